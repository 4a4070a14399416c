"""Conversations and their messages, with the sources, usage and cost of each answer."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from ingest.models import KnowledgeBase


class Conversation(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    owner_key = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Anonymous owner (session or visitor)"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or str(self.uid)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped by the user"
        ERROR = "error", "Error"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True, help_text="A reasoning model's trace, kept apart")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    images = models.JSONField(default=list, blank=True, help_text="Stored screenshot paths")
    image_text = models.TextField(blank=True, help_text="OCR text of the attached screenshots")
    retrieval_query = models.TextField(blank=True)
    sources = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=200, blank=True)
    retrieval_only = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="As reported by the API"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Feedback(models.Model):
    """A thumbs up or down on one answer, with an optional comment."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=[(1, "Helpful"), (-1, "Not helpful")])
    comment = models.TextField(blank=True, max_length=2000)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    owner_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "owner_key"], name="feedback_once_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"{'+' if self.rating > 0 else '-'}1 on message {self.message_id}"


class ApiKey(models.Model):
    """A key for scripts: stored as a SHA-256 hash, scoped to knowledge bases."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, unique=True, editable=False, help_text="Shown to recognise it"
    )
    hashed = models.CharField(max_length=64, unique=True, editable=False)
    knowledge_bases = models.ManyToManyField(KnowledgeBase, related_name="api_keys")
    can_write = models.BooleanField(
        default=False, help_text="May upload, re-index and delete documents"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

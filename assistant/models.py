"""Conversations and their messages, with the sources, usage and cost of each answer."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from ingest.models import KnowledgeBase

from .origins import origin_of_request, origins_normalise


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
        TRUNCATED = "truncated", "Cut off at the output limit"
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
    matched = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the knowledge base held a close enough passage (empty: not known)",
    )
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


def _widget_public_id() -> str:
    import secrets

    return "w_" + secrets.token_urlsafe(9)


class Widget(models.Model):
    """A help widget any site embeds with one <script> tag, over one knowledge base."""

    class Position(models.TextChoices):
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"

    public_id = models.CharField(
        max_length=32, unique=True, default=_widget_public_id, editable=False
    )
    name = models.CharField(max_length=100)
    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="widgets")
    enabled = models.BooleanField(default=True)
    allowed_origins = models.TextField(
        blank=True,
        help_text=(
            "One site per line: scheme, host and port if not the usual one, e.g. "
            "https://www.example.com or http://127.0.0.1:8099. Empty: allowed nowhere."
        ),
    )
    title = models.CharField(max_length=100, default="Help")
    greeting = models.CharField(max_length=500, default="Hi! Ask me anything about our product.")
    starter_questions = models.TextField(blank=True, help_text="One per line, shown as buttons")
    color = models.CharField(
        max_length=7,
        default="#3056d3",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #3056d3.")],
        help_text="#rrggbb",
    )
    position = models.CharField(
        max_length=16, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    accept_screenshots = models.BooleanField(default=True)
    daily_quota_per_visitor = models.PositiveIntegerField(
        default=50, help_text="Questions per visitor per day"
    )
    daily_quota_per_ip = models.PositiveIntegerField(
        default=300, help_text="Questions per IP address per day"
    )
    max_message_chars = models.PositiveIntegerField(default=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    def clean(self) -> None:
        """The allowed origins, normalised as browsers send them, or an error per bad line."""
        try:
            self.allowed_origins = "\n".join(origins_normalise(self.allowed_origins))
        except ValidationError as exc:
            raise ValidationError({"allowed_origins": exc.error_list}) from exc
        self.color = self.color.lower()

    @property
    def origins(self) -> list[str]:
        """The allowed origins, normalised; a line saved before validation that is not an
        origin matches nothing."""
        found = (origin_of_request(line) for line in self.allowed_origins.splitlines())
        return [origin for origin in found if origin]

    @property
    def starters(self) -> list[str]:
        return [line.strip() for line in self.starter_questions.splitlines() if line.strip()][:6]


class Usage(models.Model):
    """Uses counted per scope, key and fixed time window (questions, sign-in failures)."""

    scope = models.CharField(max_length=40, help_text="widget:<id>, chat or login")
    key = models.CharField(max_length=200, help_text="e.g. visitor:<id>, ip:<address>")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key", "window_start"], name="usage_once_per_window"
            )
        ]
        indexes = [models.Index(fields=["window_start"], name="assistant_u_window__idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} {self.window_start:%Y-%m-%d %H:%M}: {self.count}"


class QuestionSet(models.Model):
    """Questions with the documents that answer them, uploaded by staff to measure how a
    knowledge base finds its answers (see assistant/evalruns.py)."""

    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="question_sets")
    name = models.CharField(max_length=100)
    source_name = models.CharField(max_length=255, blank=True, help_text="The uploaded file")
    # [{"id": str, "text": str, "expected": [document file names]}]; an empty "expected"
    # marks an off-topic question, which should get "no match".
    questions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kb.name})"

    @property
    def answerable(self) -> int:
        return sum(1 for q in self.questions if q["expected"])

    @property
    def off_topic(self) -> int:
        return len(self.questions) - self.answerable


SEARCH_MODES = [("hybrid", "Hybrid"), ("dense", "Dense only"), ("lexical", "Words only")]


class EvaluationRun(models.Model):
    """One question set asked of its knowledge base as it was configured at the time."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    question_set = models.ForeignKey(QuestionSet, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(
        max_length=16,
        default="hybrid",
        choices=SEARCH_MODES,
    )
    note = models.CharField(max_length=200, blank=True, help_text="What changed, for you")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Questions asked so far")
    total = models.PositiveIntegerField(default=0)
    snapshot = models.JSONField(default=dict, blank=True, help_text="Settings it ran with")
    metrics = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=list, blank=True, help_text="One entry per question")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.question_set.name}"

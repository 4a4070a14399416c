"""Helpers shared by the security tests: documents, streamed bodies, DB fingerprints."""

from __future__ import annotations

import asyncio
import io
import json
from concurrent.futures import ThreadPoolExecutor

#: The website the test widgets are embedded in (an allowed Origin).
SITE = "https://shop.example"
#: A website no widget allows.
EVIL_SITE = "https://evil.example"


def ingest(tools, kb, name: str, data: bytes | str):
    """Put a document into `kb` through the real pipeline, synchronously (like `ingest_text`)."""
    from ingest.services import document_create, document_ingest

    if isinstance(data, str):
        data = data.encode()
    document = document_create(kb=kb, filename=name, content=io.BytesIO(data), enqueue=False)
    result = document_ingest(document_id=document.document.pk, owner="test:1:1", tools=tools)
    assert result is not None and result.status == "ready", result and result.error
    return result


def body_of(response) -> bytes:
    """The whole body of a test-client response, streamed (sync or async) or not.

    Async bodies are collected on a worker thread: once the browser tests have run,
    Playwright keeps an event loop in this thread, which ``async_to_sync`` refuses to share.
    """
    if not getattr(response, "streaming", False):
        return response.content
    try:
        if getattr(response, "is_async", False):

            async def collect() -> bytes:
                return b"".join([chunk async for chunk in response.streaming_content])

            with ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, collect()).result(timeout=120)
        return b"".join(response.streaming_content)
    finally:
        response.close()


def sse_events(data: bytes) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs."""
    events = []
    for frame in data.decode().split("\n\n"):
        kind, payload = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                payload.append(line[5:].strip())
        if payload:
            events.append((kind, json.loads("\n".join(payload))))
    return events


def db_fingerprint() -> tuple:
    """Everything an attacker could want to change, as comparable values.

    Left out on purpose: sessions, ApiKey.last_used_at and User.last_login, which reading
    legitimately touches.
    """
    from django.contrib.auth import get_user_model
    from django_tasks_db.models import DBTaskResult

    from assistant.models import ApiKey, Conversation, Feedback, Message, Usage, Widget
    from ingest.models import Asset, Chunk, Document, KnowledgeBase

    def rows(queryset, *fields):
        return tuple(sorted(queryset.values_list(*fields), key=repr))

    return (
        rows(
            KnowledgeBase.objects,
            "pk",
            "name",
            "slug",
            "visibility",
            "description",
            "system_prompt",
            "model",
            "temperature",
            "retrieval_budget",
        ),
        rows(KnowledgeBase.members.through.objects, "knowledgebase_id", "user_id"),
        rows(
            Document.objects,
            "pk",
            "kb_id",
            "filename",
            "file",
            "status",
            "stage",
            "generation",
            "task_id",
            "error",
            "chunk_count",
        ),
        rows(Chunk.objects, "pk", "document_id", "vector_id"),
        rows(Asset.objects, "pk", "document_id", "file"),
        rows(Conversation.objects, "pk", "kb_id", "title", "user_id", "owner_key"),
        rows(Message.objects, "pk", "conversation_id", "role", "content", "status"),
        rows(Feedback.objects, "pk", "message_id", "rating", "comment", "owner_key"),
        rows(ApiKey.objects, "pk", "name", "can_write", "revoked", "hashed"),
        rows(ApiKey.knowledge_bases.through.objects, "apikey_id", "knowledgebase_id"),
        rows(Widget.objects, "pk", "kb_id", "enabled", "allowed_origins"),
        rows(Usage.objects, "scope", "key", "window_start", "count"),
        rows(get_user_model().objects, "pk", "username", "is_staff", "is_superuser", "password"),
        rows(DBTaskResult.objects, "id", "status"),
    )

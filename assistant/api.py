"""The JSON REST API root: /api/, with its OpenAPI schema at /api/openapi.json.

Callers authenticate with an API key (`Authorization: Bearer dk_...`, made in the admin
and scoped to knowledge bases) or a signed-in browser session (with its CSRF token).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from django.http import StreamingHttpResponse
from ninja import NinjaAPI, Router, Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from ingest.api import MAX_OFFSET, caller, kb_for
from ingest.api import router as documents_router

from .keys import api_key_authenticate
from .models import Conversation, Message
from .selectors import conversations_owned
from .services import (
    ChatInputError,
    answer_stream,
    chat_tools,
    feedback_record,
    screenshot_prepare,
)
from .streaming import iterate_in_thread, sse_events


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request, token: str):
        key = api_key_authenticate(token=token)
        if key is not None:
            request.api_key = key
        return key


api = NinjaAPI(
    title="Docent API",
    version="1",
    description=__doc__,
    urls_namespace="api",
    auth=[ApiKeyAuth(), SessionAuth()],
    # Ninja's Swagger page pulls scripts from a CDN and runs inline script, which the
    # Content-Security-Policy forbids; the schema itself is served at /api/openapi.json.
    docs_url=None,
)
router = Router(tags=["chat"])


class ChatIn(Schema):
    question: str
    conversation: UUID | None = None
    stream: bool = False
    images: list[str] = []  # base64 images, or data: URLs; at most 8


class SourceOut(Schema):
    number: int
    document_id: int
    document: str
    pages: list[int]
    section: str
    url: str
    excerpt: str


class ChatOut(Schema):
    conversation: UUID
    message_id: int
    status: str
    answer: str
    reasoning: str
    error: str
    retrieval_only: bool
    sources: list[SourceOut]
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None


class RateLimitedOut(Schema):
    detail: str
    conversation: UUID
    message_id: int


class MessageOut(Schema):
    id: int
    role: str
    content: str
    status: str
    sources: list[SourceOut]
    created_at: datetime


class ConversationOut(Schema):
    id: UUID
    kb: str
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class FeedbackIn(Schema):
    rating: int  # 1 helpful, -1 not helpful
    comment: str = ""


class FeedbackOut(Schema):
    message_id: int
    rating: int
    comment: str


def owner_of(request) -> tuple[object | None, str]:
    """(user, owner key) that conversations started through the API belong to."""
    user, key = caller(request)
    return (None, f"key:{key.pk}") if key is not None else (user, "")


def _conversation_out(conversation: Conversation) -> dict:
    return {
        "id": conversation.uid,
        "kb": conversation.kb.slug,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def _decode_image(value: str) -> bytes:
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(422, "images must be base64 (or base64 data: URLs)") from exc


@router.post(
    "/kbs/{slug}/chat",
    response={200: ChatOut, 429: RateLimitedOut},
    summary="Ask a question (stream=true answers as text/event-stream)",
    openapi_extra={
        "responses": {"200": {"content": {"text/event-stream": {"schema": {"type": "string"}}}}}
    },
)
def chat(request, slug: str, payload: ChatIn):
    kb = kb_for(request, slug)
    user, owner_key = owner_of(request)
    conversation = None
    if payload.conversation is not None:
        conversation = (
            conversations_owned(kb=kb, user=user, owner_key=owner_key)
            .filter(uid=payload.conversation)
            .first()
        )
        if conversation is None:
            raise HttpError(404, "No such conversation.")
    if len(payload.images) > 8:
        raise HttpError(422, "Attach at most 8 images.")
    try:
        shots = [screenshot_prepare(data=_decode_image(image)) for image in payload.images]
        events = answer_stream(
            kb=kb,
            question=payload.question,
            tools=chat_tools(kb),
            conversation=conversation,
            screenshots=shots,
            owner_key=owner_key,
            user=user,
        )
    except ChatInputError as exc:
        raise HttpError(422, str(exc)) from exc
    if payload.stream:
        response = StreamingHttpResponse(
            iterate_in_thread(lambda: sse_events(events)), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        return response
    conversation_id = None
    message_id = None
    error: dict = {}
    for event in events:
        if event.kind == "conversation":
            conversation_id = event.data["id"]
        elif event.kind == "error":
            error = event.data
        elif event.kind == "done":
            message_id = event.data["message_id"]
    reply = Message.objects.get(pk=message_id)
    if error.get("code") == "rate_limited":
        response = api.create_response(
            request,
            {"detail": error["message"], "conversation": conversation_id, "message_id": reply.pk},
            status=429,
        )
        response["Retry-After"] = str(max(1, round(error.get("retry_after") or 30)))
        return response
    return {
        "conversation": conversation_id,
        "message_id": reply.pk,
        "status": reply.status,
        "answer": reply.content,
        "reasoning": reply.reasoning,
        "error": reply.error,
        "retrieval_only": reply.retrieval_only,
        "sources": reply.sources,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cost": float(reply.cost) if reply.cost is not None else None,
    }


@router.get(
    "/kbs/{slug}/conversations", response=list[ConversationOut], summary="Your conversations"
)
def conversation_list(request, slug: str, limit: int = 50, offset: int = 0):
    kb = kb_for(request, slug)
    user, owner_key = owner_of(request)
    owned = conversations_owned(kb=kb, user=user, owner_key=owner_key).select_related("kb")
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, MAX_OFFSET))
    return [_conversation_out(c) for c in owned[offset : offset + limit]]


@router.get(
    "/conversations/{uid}",
    response=ConversationDetail,
    summary="One conversation with its messages",
)
def conversation_detail(request, uid: UUID):
    conversation = Conversation.objects.select_related("kb").filter(uid=uid).first()
    if conversation is None:
        raise HttpError(404, "Not Found")
    kb = kb_for(request, conversation.kb.slug)
    user, owner_key = owner_of(request)
    if (
        not conversations_owned(kb=kb, user=user, owner_key=owner_key)
        .filter(pk=conversation.pk)
        .exists()
    ):
        raise HttpError(404, "Not Found")
    return {**_conversation_out(conversation), "messages": list(conversation.messages.all())}


@router.post("/messages/{message_id}/feedback", response=FeedbackOut, summary="Rate an answer")
def feedback(request, message_id: int, payload: FeedbackIn):
    message = Message.objects.select_related("conversation__kb").filter(pk=message_id).first()
    if message is None:
        raise HttpError(404, "Not Found")
    kb = kb_for(request, message.conversation.kb.slug)
    user, owner_key = owner_of(request)
    if (
        not conversations_owned(kb=kb, user=user, owner_key=owner_key)
        .filter(pk=message.conversation_id)
        .exists()
    ):
        raise HttpError(404, "Not Found")
    try:
        record = feedback_record(
            message=message,
            rating=payload.rating,
            comment=payload.comment,
            user=user,
            owner_key=owner_key,
        )
    except ChatInputError as exc:
        raise HttpError(422, str(exc)) from exc
    return {"message_id": message.pk, "rating": record.rating, "comment": record.comment}


api.add_router("/", documents_router)
api.add_router("/", router)

"""The JSON REST API root: /api/, with its OpenAPI schema at /api/openapi.json.

Callers authenticate with an API key (`Authorization: Bearer dk_...`, made in the admin
and scoped to knowledge bases) or a signed-in browser session (with its CSRF token).

Beside it, with the same keys: `/v1/` is OpenAI's chat-completions API, each knowledge
base a model `docent/<slug>` (`GET /v1/models`, `POST /v1/chat/completions`; sources in
the extension field `sources`, `filters` as in chat), and `/mcp` is an MCP server
(streamable HTTP; tools `list_knowledge_bases`, `search`, `ask`, `get_document`). The
README's "As an OpenAI-compatible model" and "As an MCP server" give the details.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ninja import NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer, SessionAuth

from ingest.api import MAX_OFFSET, kb_for
from ingest.api import router as documents_router

from .answers import answer_collect
from .askers import Asker
from .conversations import conversation_delete, conversation_rename
from .feedback import feedback_record_own
from .http import decode_images, filters_from, sse_response
from .keys import api_key_authenticate
from .models import Conversation, Message
from .presenters import api_events, api_link, linked, message_citations
from .services import ChatInputError, answer_stream


class BrowserSessionAuth(SessionAuth):
    """A signed-in browser, CSRF-checked. Without a signed-in user there is nothing to
    check: the request is simply not authenticated, so that a program with a missing or
    wrong key is told 401 (and how to authenticate), not "CSRF check Failed"."""

    def __call__(self, request):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


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
    auth=[ApiKeyAuth(), BrowserSessionAuth()],
    # Ninja's Swagger page pulls scripts from a CDN and runs inline script, which the
    # Content-Security-Policy forbids; the schema itself is served at /api/openapi.json.
    docs_url=None,
)
router = Router(tags=["chat"])


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    response = api.create_response(
        request,
        {
            "detail": "Authentication required: send an API key as 'Authorization: Bearer "
            "dk_...' (make one with manage.py apikey or in the admin), or sign in."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="docent"'
    return response


class FiltersIn(Schema):
    """Which documents the answer may read; parts combine with AND, values with OR."""

    documents: list[str | int] = []  # names or ids
    kinds: list[str] = []  # pdf, docx, markdown, text, html, image
    tags: list[str] = []  # the tags admins set on documents
    uploaded_after: str | None = None  # ISO date or date-time; a date covers its day
    uploaded_before: str | None = None


class ChatIn(Schema):
    question: str
    filters: FiltersIn | None = None
    conversation: UUID | None = None
    stream: bool = False
    images: list[str] = []  # base64 images, or data: URLs; at most 8
    # Ask again from this question of the conversation (its id): it and everything after
    # it are replaced. With no question and no images, the same question is asked again.
    resend_from: int | None = None


class PassageOut(Schema):
    """One passage the answer was given to read; [number] cites it."""

    number: int
    document_id: int
    document: str
    pages: list[int]
    section: str
    url: str  # absolute, like SourceOut.url
    excerpt: str


class SourceOut(Schema):
    """One document an answer read: cited ones first, in the order the answer cites them."""

    document_id: int
    document: str
    cited: bool
    numbers: list[int]  # the citation numbers [n] of its passages
    pages: list[int]  # the pages of those passages
    section: str  # the section of the first one
    excerpt: str  # the start of the first one, at most 300 characters
    url: str  # absolute: for an API key a signed link anyone can open (see API_CITATION_SECONDS)


class ChatOut(Schema):
    conversation: UUID
    message_id: int
    status: str
    answer: str
    reasoning: str
    error: str
    retrieval_only: bool
    sources: list[SourceOut]
    passages: list[PassageOut]
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
    passages: list[PassageOut]
    created_at: datetime


class ConversationOut(Schema):
    id: UUID
    kb: str
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ConversationRenameIn(Schema):
    title: str  # trimmed; 1 to 200 characters


class FeedbackIn(Schema):
    rating: int  # 1 helpful, -1 not helpful
    comment: str = ""


class FeedbackOut(Schema):
    message_id: int
    rating: int
    comment: str


def _message_out(message: Message) -> dict:
    fields = ("id", "role", "content", "status", "created_at")
    return {name: getattr(message, "pk" if name == "id" else name) for name in fields}


def _links(request):
    """Absolute citation links for this caller (signed ones for an API key)."""
    key = getattr(request, "api_key", None)
    return api_link(base=request.build_absolute_uri("/")[:-1], key_id=key.pk if key else None)


def _message_sources(message: Message, link) -> dict:
    grouped = message_citations(message.content, message.sources, link)
    return {
        "sources": [*grouped["cited"], *grouped["more"]],
        "passages": linked(message.sources, link),
    }


def _conversation_out(conversation: Conversation) -> dict:
    return {
        "id": conversation.uid,
        "kb": conversation.kb.slug,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


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
    try:
        events = answer_stream(
            kb=kb,
            asker=Asker.for_api(request),
            question=payload.question,
            images=decode_images(payload.images),
            conversation_uid=str(payload.conversation) if payload.conversation else None,
            resend_from=payload.resend_from,
            filters=filters_from(payload.filters.dict() if payload.filters else None),
        )
    except ChatInputError as exc:
        response = api.create_response(request, {"detail": str(exc)}, status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if payload.stream:
        return sse_response(request, api_events(events, _links(request)))
    answer = answer_collect(api_events(events, _links(request)))
    if answer.error.get("code") == "rate_limited":
        body = {"detail": answer.error["message"], **answer.ids()}
        response = api.create_response(request, body, status=429)
        response["Retry-After"] = str(max(1, round(answer.error.get("retry_after") or 30)))
        return response
    return answer.as_json()


@router.get(
    "/kbs/{slug}/conversations", response=list[ConversationOut], summary="Your conversations"
)
def conversation_list(request, slug: str, limit: int = 50, offset: int = 0):
    owned = Asker.for_api(request).conversations(kb=kb_for(request, slug)).select_related("kb")
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, MAX_OFFSET))
    return [_conversation_out(c) for c in owned[offset : offset + limit]]


@router.get(
    "/conversations/{uid}",
    response=ConversationDetail,
    summary="One conversation with its messages",
)
def conversation_detail(request, uid: UUID):
    conversation = _owned_conversation(request, uid)
    link = _links(request)
    messages = [
        {**_message_out(m), **_message_sources(m, link)} for m in conversation.messages.all()
    ]
    return {**_conversation_out(conversation), "messages": messages}


def _owned_conversation(request, uid: UUID) -> Conversation:
    """The caller's own conversation; 404 for one that isn't there or isn't theirs."""
    conversation = Conversation.objects.select_related("kb").filter(uid=uid).first()
    if conversation is None:
        raise HttpError(404, "Not Found")
    kb = kb_for(request, conversation.kb.slug)
    if not Asker.for_api(request).conversations(kb=kb).filter(pk=conversation.pk).exists():
        raise HttpError(404, "Not Found")
    return conversation


@router.patch("/conversations/{uid}", response=ConversationOut, summary="Rename a conversation")
def conversation_patch(request, uid: UUID, payload: ConversationRenameIn):
    conversation = _owned_conversation(request, uid)
    try:
        conversation_rename(conversation=conversation, title=payload.title)
    except ChatInputError as exc:
        raise HttpError(exc.status, str(exc)) from exc
    return _conversation_out(conversation)


@router.delete(
    "/conversations/{uid}",
    response={204: None},
    summary="Delete a conversation with its messages and screenshots",
)
def conversation_remove(request, uid: UUID):
    conversation_delete(conversation=_owned_conversation(request, uid))
    return Status(204, None)


@router.post("/messages/{message_id}/feedback", response=FeedbackOut, summary="Rate an answer")
def feedback(request, message_id: int, payload: FeedbackIn):
    message = Message.objects.select_related("conversation__kb").filter(pk=message_id).first()
    if message is None:
        raise HttpError(404, "Not Found")
    kb = kb_for(request, message.conversation.kb.slug)
    try:
        record = feedback_record_own(
            kb=kb,
            asker=Asker.for_api(request),
            message_id=message.pk,
            rating=payload.rating,
            comment=payload.comment,
        )
    except ChatInputError as exc:
        raise HttpError(exc.status, str(exc)) from exc
    return {"message_id": message.pk, "rating": record.rating, "comment": record.comment}


api.add_router("/", documents_router)
api.add_router("/", router)

"""answer_stream: the one path from a question to a streamed, cited answer.

Chat page, widget, API and `manage.py ask` all call it:
question -> (standalone rewrite) -> retrieve -> pack -> LLM -> events, saved as a Message.
Whatever fails after the first event becomes an `error` event and a reply saved with
status "error" and its reason; nothing escapes as a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from ingest.filters import DocumentFilter, FilterError, documents_filtered
from ingest.models import KnowledgeBase
from ministral.registry import ModelInfo

from .askers import Asker
from .citations import sources_cited
from .context import answer_tokens, context_pack
from .conversations import conversation_truncate, message_save_partial
from .events import ChatEvent
from .failures import failure_described
from .followups import conversation_history, question_standalone
from .llm import (
    Finished,
    LLMClient,
    LLMError,
    ReasoningDelta,
    StreamFailed,
    TextDelta,
    Usage,
    Waiting,
)
from .models import Conversation, Message
from .packing import PackedRequest, PackedSource, Turn
from .prompts import retrieval_only_answer
from .quotas import QuotaExceeded, quota_consume
from .screenshots import (
    Attachment,
    ChatInputError,
    ConversationNotFound,
    Screenshot,
    attachments_check,
    screenshot_prepare,
    screenshot_read,
    screenshots_save,
    screenshots_saved,
)
from .tools import ChatTools, chat_tools

__all__ = [
    "Asker",
    "ChatEvent",
    "ChatInputError",
    "ChatTools",
    "ConversationNotFound",
    "answer_stream",
    "chat_tools",
]

logger = logging.getLogger("docent.chat")
# What a screenshot sent without words asks: people paste an error and expect help with it.
PARTIAL_SAVE_SECONDS = 3.0  # how often a streaming answer's text so far is saved
IMAGE_ONLY_QUESTION = "What does this screenshot show, and what should I do about it?"
NO_FILTER = DocumentFilter()


# --- the question path ------------------------------------------------------------------------


def answer_stream(
    *,
    kb: KnowledgeBase,
    asker: Asker,
    question: str,
    images: Sequence[Attachment] = (),
    conversation_uid: str | None = None,
    resend_from: int | None = None,
    history: Sequence[Turn] = (),
    filters: DocumentFilter = NO_FILTER,
    tools: ChatTools | None = None,
) -> Iterator[ChatEvent]:
    """Answer one question as a stream of events; the answer is saved whatever happens.

    `images` are the attached screenshots, not read yet; with screenshots the question
    may be empty. `conversation_uid` continues one of the asker's own conversations in
    `kb`. `resend_from` (a question of that conversation) asks again from there: that
    question and everything after it are replaced, by `question` when given (edit and
    resend), else by the same question with its screenshots (regenerate). `history` is
    the earlier turns of a conversation the client keeps itself (an OpenAI-style client
    sends them with each question); it starts a new stored one. `filters` limits the
    documents it may read (ingest.filters). Input problems
    raise ChatInputError
    (with the HTTP status every surface answers) before any event; everything after
    that is reported as events.

    The checks run cheapest first, so that a caller over quota or over a limit costs
    almost nothing: the text and the conversation's owner, the quota, the number and
    declared sizes of the images, then reading them, then decoding them with a pixel
    limit.
    """
    question = question.replace("\x00", "").strip()  # NUL: PostgreSQL can't store it
    limit = asker.max_question_chars or settings.MAX_QUESTION_CHARS
    if len(question) > limit:
        raise ChatInputError(f"Please keep questions under {limit:,} characters.")
    conversation = None
    if conversation_uid:  # whose it is: part of who may ask, so before the quota
        conversation = _owned_conversation(asker, kb, conversation_uid)
        if conversation is None:
            raise ConversationNotFound("That conversation does not exist.")
        if history:
            raise ChatInputError("Send either a stored conversation or its history, not both.")
    replaced = _replaced_question(conversation, resend_from)
    if replaced is not None and not question and not images:  # regenerate: the same again
        question, images = replaced.content, screenshots_saved(message=replaced)
    if not question and not images:
        raise ChatInputError("Please type a question or attach a screenshot.")
    try:
        documents = documents_filtered(kb=kb, filters=filters)
    except FilterError as exc:
        raise ChatInputError(str(exc)) from exc
    _quota_consume(asker)
    attachments_check(attachments=images, allowed=asker.screenshots)
    screenshots = [screenshot_prepare(data=image.read()) for image in images]
    if replaced is not None:
        conversation_truncate(message=replaced)
    tools = tools or chat_tools(kb)
    body = partial(_answer_body, kb, question, tools, screenshots=screenshots, documents=documents)
    return _answer_events(kb, question, tools, conversation, asker, history, body)


def _replaced_question(conversation: Conversation | None, pk: int | None) -> Message | None:
    if pk is None:
        return None
    found = (
        conversation.messages.filter(pk=pk, role=Message.Role.USER).first()
        if conversation
        else None
    )
    if found is None:
        raise ConversationNotFound("That question is not in this conversation.")
    return found


def _quota_consume(asker: Asker) -> None:
    if not asker.quota_scope:
        return
    try:
        quota_consume(
            scope=asker.quota_scope,
            limits=asker.quota,
            message="You have reached today's limit of questions. Please come back tomorrow.",
        )
    except QuotaExceeded as exc:
        raise ChatInputError(str(exc), status=429, retry_after=exc.retry_after) from exc


def _owned_conversation(asker: Asker, kb: KnowledgeBase, uid: str) -> Conversation | None:
    try:
        parsed = uuid.UUID(str(uid))
    except ValueError:
        return None
    return asker.conversations(kb=kb).filter(uid=parsed).first()


def _answer_events(
    kb: KnowledgeBase,
    question: str,
    tools: ChatTools,
    conversation: Conversation | None,
    asker: Asker,
    prior: Sequence[Turn],
    body: Callable[..., Iterator[ChatEvent]],
) -> Iterator[ChatEvent]:
    if conversation is None:
        conversation = Conversation.objects.create(
            kb=kb, owner_key=asker.owner_key, user=asker.user, title=question[:200] or "Screenshot"
        )
    history = list(prior) or conversation_history(conversation=conversation)
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question
    )
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=tools.llm.config.model if tools.llm else "",
        retrieval_only=tools.llm is None,
    )
    yield ChatEvent(
        "conversation",
        {
            "id": str(conversation.uid),
            "kb": kb.slug,
            "title": conversation.title,
            "question_id": user_message.pk,
            "message_id": reply.pk,
        },
    )
    failure: dict | None = None
    finished = False
    try:
        yield from body(history=history, user_message=user_message, reply=reply)
        finished = True
    except Exception as exc:
        failure = failure_described(exc)
        reply.status, reply.error = Message.Status.ERROR, failure["message"]
        finished = True
    finally:
        if not finished and reply.status == Message.Status.STREAMING:
            reply.status = Message.Status.STOPPED  # the client went away or pressed stop
        if reply.status == Message.Status.STREAMING:
            reply.status = Message.Status.COMPLETE
        try:
            reply.save()
            Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
        except DatabaseError:
            logger.exception("Could not save answer %s", reply.pk)
    yield ChatEvent("citations", sources_cited(text=reply.content, sources=reply.sources))
    if failure is not None:
        yield ChatEvent("error", {**failure, "partial": bool(reply.content)})
    yield ChatEvent(
        "done",
        {
            "message_id": reply.pk,
            "status": reply.status,
            "retrieval_only": reply.retrieval_only,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cost": float(reply.cost) if reply.cost is not None else None,
        },
    )


def _answer_body(
    kb: KnowledgeBase,
    question: str,
    tools: ChatTools,
    *,
    screenshots: Sequence[Screenshot],
    documents: tuple[int, ...] | None,
    history: list[Turn],
    user_message: Message,
    reply: Message,
) -> Iterator[ChatEvent]:
    if screenshots:
        yield ChatEvent("status", {"stage": "reading screenshots"})
        screenshots = _read_screenshots(user_message, screenshots)
    yield ChatEvent("status", {"stage": "retrieving"})
    question = question or IMAGE_ONLY_QUESTION
    query = question_standalone(question=question, history=history, llm=tools.llm)
    if user_message.image_text:
        query += "\n" + user_message.image_text[:1000]
    reply.retrieval_query = query
    llm = tools.llm
    for attempt in (1, 2):
        info = llm.info if llm else None
        max_output = answer_tokens(llm.config.max_tokens, info) if llm and info else 0
        packed = context_pack(
            kb=kb,
            query=query,
            question=question,
            history=history,
            screenshots=screenshots,
            info=info,
            tools=tools,
            max_output_tokens=max_output,
            documents=documents,
        )
        reply.sources = [_source_json(s) for s in packed.sources]
        reply.prompt_tokens, reply.matched = packed.prompt_tokens, packed.matched
        reply.save(update_fields=["retrieval_query", "sources", "prompt_tokens", "matched"])
        yield ChatEvent(
            "sources",
            {
                "sources": reply.sources,
                "prompt_tokens": packed.prompt_tokens,
                "context_window": info.context_window if info else None,
            },
        )
        if llm is None:
            reply.content = retrieval_only_answer(packed, kb_name=kb.name)
            yield ChatEvent("delta", {"text": reply.content})
            return
        yield ChatEvent("status", {"stage": "generating"})
        try:
            yield from _stream_answer(llm, packed, reply, max_output)
            return
        except LLMError as exc:
            # The server said its window is smaller than Docent thought: believe it, pack
            # again into that window, and ask once more.
            window = _smaller_window(exc, info)
            if window is None or attempt == 2 or reply.content:
                raise
            llm.learn_window(window)
            message = f"The model server's window is {window:,} tokens; packing again to fit it."
            yield ChatEvent("status", {"stage": "retrying", "message": message})


def _read_screenshots(message: Message, screenshots: Sequence[Screenshot]) -> list[Screenshot]:
    """OCR the screenshots, keep them with the question, and save their text on it."""
    read = [screenshot_read(shot=shot) for shot in screenshots]
    message.image_text = "\n\n".join(s.image.ocr_text for s in read if s.image.ocr_text)
    message.images = screenshots_save(message=message, screenshots=read)
    message.save(update_fields=["image_text", "images"])
    return read


def _smaller_window(exc: LLMError, info: ModelInfo | None) -> int | None:
    """The window a server named when it refused a request as too long, if it is smaller."""
    if exc.code != "context" or exc.window is None or info is None:
        return None
    return exc.window if exc.window < info.context_window else None


def _stream_answer(
    llm: LLMClient, packed: PackedRequest, reply: Message, max_output: int
) -> Iterator[ChatEvent]:
    text: list[str] = []
    reasoning: list[str] = []
    saved_at = time.monotonic()
    stream = llm.stream(messages=packed.messages, max_tokens=max_output)
    with contextlib.closing(stream) as events:
        try:
            for event in events:
                if time.monotonic() - saved_at >= PARTIAL_SAVE_SECONDS:
                    saved_at = time.monotonic()
                    content, thought = "".join(text), "".join(reasoning)
                    message_save_partial(message=reply, content=content, reasoning=thought)
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    yield ChatEvent("delta", {"text": event.text})
                elif isinstance(event, ReasoningDelta):
                    reasoning.append(event.text)
                    yield ChatEvent("reasoning", {"text": event.text})
                elif isinstance(event, Waiting):
                    yield ChatEvent(
                        "status",
                        {"stage": "waiting", "message": event.message, "seconds": event.seconds},
                    )
                elif isinstance(event, Usage):
                    reply.prompt_tokens = event.prompt_tokens
                    reply.completion_tokens = event.completion_tokens
                    if event.cost is not None:
                        reply.cost = Decimal(str(event.cost))
                elif isinstance(event, StreamFailed):
                    reply.status, reply.error = Message.Status.ERROR, event.message
                    yield ChatEvent(
                        "error",
                        {"message": event.message, "code": "interrupted", "partial": bool(text)},
                    )
                elif isinstance(event, Finished) and event.reason == "length":
                    message = "The answer was cut off at the output limit (LLM_MAX_TOKENS)."
                    reply.status, reply.error = Message.Status.TRUNCATED, message
                    yield ChatEvent(
                        "error", {"message": message, "code": "truncated", "partial": True}
                    )
        finally:
            reply.content = "".join(text)
            reply.reasoning = "".join(reasoning)


def _source_json(source: PackedSource) -> dict:
    """A cited source as stored and streamed: no URL (each surface links it its own way)."""
    passage = source.passage
    return {
        "number": source.number,
        "document_id": passage.document_id,
        "document": passage.document_name,
        "pages": list(passage.pages),
        "section": passage.heading,
        "excerpt": " ".join(passage.text.split())[:300],
        "chunk_ids": [c.pk for c in passage.chunks],
        "image": source.image_number is not None,
        "score": round(passage.score, 4),  # retrieval's fused relevance, for review
    }

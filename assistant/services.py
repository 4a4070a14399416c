"""answer_stream: the one path from a question to a streamed, cited answer.

Chat page, widget, API and `manage.py ask` all call it:
question -> (standalone rewrite) -> retrieve -> pack -> LLM -> events, saved as a Message.
Whatever fails after the first event becomes an `error` event and a reply saved with
status "error" and its reason; nothing escapes as a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from ingest.models import KnowledgeBase
from ingest.store import StoreUnavailable
from ministral.registry import ModelInfo

from .llm import (
    Finished,
    LLMClient,
    LLMError,
    ReasoningDelta,
    Sampling,
    StreamFailed,
    TextDelta,
    Usage,
    Waiting,
)
from .models import Conversation, Message
from .packing import Budget, ImageInput, PackedRequest, PackingError, Turn, pack_context
from .prompts import (
    default_system_prompt,
    retrieval_only_answer,
    rewrite_messages,
    system_parts,
)
from .retrieval import Passage, RetrievalConfig, passages_from_hits, retrieve
from .screenshots import (
    ChatInputError,
    Screenshot,
    asset_image,
    screenshot_prepare,
    screenshot_read,
)
from .tools import ChatTools, chat_tools

__all__ = [
    "ChatEvent",
    "ChatInputError",
    "ChatTools",
    "Screenshot",
    "answer_stream",
    "chat_tools",
    "context_pack",
    "conversation_history",
    "feedback_record",
    "question_standalone",
    "screenshot_prepare",
]

logger = logging.getLogger("docent.chat")
RETRIEVAL_ONLY_CONTEXT = 256_000  # tokens: without a model, only the retrieval budget matters
REWRITE_TOKENS = 200  # tokens an instruct model gets to rewrite a follow-up
REWRITE_REASONING_TOKENS = 2048  # a reasoning model thinks first: room for that and the answer


@dataclass(frozen=True)
class ChatEvent:
    kind: str  # conversation | status | sources | delta | reasoning | error | done
    data: dict = field(default_factory=dict)


# --- the question path ------------------------------------------------------------------------


def conversation_history(*, conversation: Conversation) -> list[Turn]:
    """Earlier question-and-answer pairs whose answer completed.

    An answer that failed, was stopped or was cut off never goes back to the model as
    if it were whole; its question goes with it, so turns still alternate.
    """
    turns: list[Turn] = []
    question: Message | None = None
    for m in conversation.messages.exclude(status=Message.Status.STREAMING):
        if m.role == Message.Role.USER:
            question = m
            continue
        if question is not None and m.status == Message.Status.COMPLETE and m.content:
            text = question.content
            if question.image_text:
                text += f"\n\n[Screenshot text: {question.image_text}]"
            turns += [Turn("user", text), Turn("assistant", m.content, m.reasoning)]
        question = None
    return turns


def question_standalone(*, question: str, history: Sequence[Turn], llm: LLMClient | None) -> str:
    """A follow-up rewritten to stand alone, so retrieval sees what "it" refers to.

    Only the visible answer is ever used: a reasoning model's trace is dropped. With
    LLM_REWRITE_MODEL set (an instruct model on the same server), that model rewrites.
    """
    if not history:
        return question
    last_user = next((t.content for t in reversed(history) if t.role == "user"), "")
    fallback = f"{last_user}\n{question}"
    if llm is None or not settings.REWRITE_FOLLOWUPS:
        return fallback
    model = llm.config.rewrite_model or llm.config.model
    info = llm.model_info(model)
    if info.reasoning:
        sampling = Sampling(temperature=info.temperature, top_p=info.top_p)
        max_tokens = REWRITE_REASONING_TOKENS
    else:
        sampling, max_tokens = Sampling(temperature=0), REWRITE_TOKENS
    try:
        _reasoning, rewritten, finish = llm.complete(
            messages=rewrite_messages(history, question, reasoning=info.reasoning),
            max_tokens=max_tokens,
            sampling=sampling,
            model=model,
        )
    except LLMError as exc:
        logger.warning("Follow-up rewrite failed, using the raw conversation: %s", exc)
        return fallback
    if finish == "length" and info.reasoning:
        return fallback  # cut off while still thinking, or mid-sentence
    rewritten = " ".join(rewritten.split())[:500]
    return rewritten or fallback


def answer_stream(
    *,
    kb: KnowledgeBase,
    question: str,
    tools: ChatTools,
    conversation: Conversation | None = None,
    screenshots: Sequence[Screenshot] = (),
    owner_key: str = "",
    user=None,
) -> Iterator[ChatEvent]:
    """Answer one question as a stream of events; the answer is saved whatever happens.

    Input problems raise ChatInputError here, before any event, so callers can refuse
    the request cleanly; everything after that is reported as events.
    """
    question = question.strip()
    if not question:
        raise ChatInputError("Please type a question.")
    if len(question) > settings.MAX_QUESTION_CHARS:
        raise ChatInputError(
            f"The question is longer than {settings.MAX_QUESTION_CHARS:,} characters."
        )
    if len(screenshots) > 8:
        raise ChatInputError("Attach at most 8 screenshots.")
    if conversation is not None and conversation.kb_id != kb.pk:
        raise ChatInputError("That conversation belongs to another knowledge base.")
    return _answer_events(kb, question, tools, conversation, screenshots, owner_key, user)


def _answer_events(
    kb: KnowledgeBase,
    question: str,
    tools: ChatTools,
    conversation: Conversation | None,
    screenshots: Sequence[Screenshot],
    owner_key: str,
    user,
) -> Iterator[ChatEvent]:
    if conversation is None:
        conversation = Conversation.objects.create(
            kb=kb,
            owner_key=owner_key,
            user=user if user and user.is_authenticated else None,
            title=question[:200],
        )
    history = conversation_history(conversation=conversation)
    yield ChatEvent("conversation", {"id": str(conversation.uid), "kb": kb.slug})
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
    failure: dict | None = None
    finished = False
    try:
        yield from _answer_body(kb, question, tools, history, screenshots, user_message, reply)
        finished = True
    except Exception as exc:
        failure = _failure(exc)
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
    history: list[Turn],
    screenshots: Sequence[Screenshot],
    user_message: Message,
    reply: Message,
) -> Iterator[ChatEvent]:
    if screenshots:
        yield ChatEvent("status", {"stage": "reading screenshots"})
        screenshots = [screenshot_read(shot=shot) for shot in screenshots]
        user_message.image_text = "\n\n".join(
            s.image.ocr_text for s in screenshots if s.image.ocr_text
        )
        user_message.images = _store_screenshots(user_message, screenshots)
        user_message.save(update_fields=["image_text", "images"])
    yield ChatEvent("status", {"stage": "retrieving"})
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
        )
        reply.sources = [_source_json(s) for s in packed.sources]
        reply.prompt_tokens = packed.prompt_tokens
        reply.save(update_fields=["retrieval_query", "sources", "prompt_tokens"])
        yield ChatEvent(
            "sources",
            {
                "sources": reply.sources,
                "prompt_tokens": packed.prompt_tokens,
                "context_window": info.context_window if info else None,
            },
        )
        if llm is None:
            reply.content = retrieval_only_answer(packed)
            yield ChatEvent("delta", {"text": reply.content})
            return
        yield ChatEvent("status", {"stage": "generating"})
        try:
            yield from _stream_answer(llm, packed, reply, max_output)
            return
        except LLMError as exc:
            # The server said its window is smaller than Docent thought: believe it, pack
            # again into that window, and ask once more.
            smaller = (
                exc.window is not None and info is not None and exc.window < info.context_window
            )
            if exc.code != "context" or not smaller or attempt == 2 or reply.content:
                raise
            llm.learn_window(exc.window)
            yield ChatEvent(
                "status",
                {
                    "stage": "retrying",
                    "message": f"The model server's window is {exc.window:,} tokens; "
                    "packing the question again to fit it.",
                },
            )


def answer_tokens(configured: int | None, info: ModelInfo) -> int:
    """Tokens the answer may take: LLM_MAX_TOKENS when set, else the model's default within
    a quarter of the window (a Reasoning model's 8,192 would fill an 8K llama.cpp server)."""
    return configured or min(info.max_output_tokens, info.context_window // 4)


def context_pack(
    *,
    kb: KnowledgeBase,
    query: str,
    question: str,
    history: Sequence[Turn],
    screenshots: Sequence[Screenshot],
    info: ModelInfo | None,
    tools: ChatTools,
    max_output_tokens: int,
    retrieval_budget: int | None = None,
    mode: str | None = None,
) -> PackedRequest:
    """Retrieve for `query` and pack the request for `question`: chat's exact path."""
    window = info.context_window if info else RETRIEVAL_ONLY_CONTEXT
    budget = Budget(
        context_window=window,
        max_output_tokens=max_output_tokens,
        margin=settings.CONTEXT_MARGIN_TOKENS,
        retrieval=retrieval_budget or kb.retrieval_budget or settings.RETRIEVAL_BUDGET_TOKENS,
    )
    if budget.prompt < 256:
        raise PackingError(
            f"The answer may take {max_output_tokens:,} tokens (LLM_MAX_TOKENS), which leaves "
            f"no room for the question in the {window:,}-token window of {info.id if info else 'the model'}. "
            "Lower LLM_MAX_TOKENS."
        )
    config = RetrievalConfig(
        mode=mode or settings.RETRIEVAL_MODE,
        lexical_weight=settings.RETRIEVAL_LEXICAL_WEIGHT,
        max_postings=settings.RETRIEVAL_LEXICAL_MAX_POSTINGS,
    )
    hits = retrieve(
        kb=kb, query=query, embedder=tools.embedder, store=tools.store, limit=100, config=config
    )
    passages = passages_from_hits(hits)
    passage_images: dict[int, ImageInput] = {}
    if info is not None and info.vision:
        for index, passage in enumerate(passages[:8]):
            asset = next((c.asset for c in passage.chunks if c.asset_id), None)
            image = asset_image(asset) if asset is not None else None
            if image is not None:
                passage_images[index] = image
    instructions = default_system_prompt(kb)
    return pack_context(
        system_prompt=system_parts(instructions, reasoning=bool(info and info.reasoning)),
        history=history,
        question=question,
        question_images=[s.image for s in screenshots],
        passages=passages,
        passage_images=passage_images,
        vision=bool(info and info.vision),
        budget=budget,
        counter=tools.counter,
    )


def _stream_answer(
    llm: LLMClient, packed: PackedRequest, reply: Message, max_output: int
) -> Iterator[ChatEvent]:
    text: list[str] = []
    reasoning: list[str] = []
    stream = llm.stream(messages=packed.messages, max_tokens=max_output)
    with contextlib.closing(stream) as events:
        try:
            for event in events:
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


def _failure(exc: Exception) -> dict:
    """The error event for a failure after the first event: what happened, for people."""
    if isinstance(exc, LLMError):
        data: dict = {"message": str(exc), "code": exc.code}
        if exc.retry_after is not None:
            data["retry_after"] = exc.retry_after
        return data
    if isinstance(exc, PackingError):
        return {"message": str(exc), "code": "packing"}
    if isinstance(exc, StoreUnavailable):
        logger.warning("Vector store unavailable mid-question: %s", exc)
        return {
            "message": "The search index is not reachable right now, so Docent could not look "
            "up sources. Please try again in a moment.",
            "code": "store_unavailable",
        }
    if isinstance(exc, DatabaseError):
        logger.exception("Database error while answering")
        return {
            "message": "The database was busy or unavailable while answering. Please try again.",
            "code": "database",
        }
    logger.exception("Unexpected failure while answering")
    return {
        "message": f"Docent failed while answering ({type(exc).__name__}); the details are "
        "in the server log.",
        "code": "internal",
    }


def _store_screenshots(message: Message, screenshots: Sequence[Screenshot]) -> list[str]:
    uid = message.conversation.uid
    return [
        default_storage.save(f"conversations/{uid}/{message.pk}-{n}.png", ContentFile(shot.png))
        for n, shot in enumerate(screenshots, start=1)
    ]


def _source_json(source) -> dict:
    passage: Passage = source.passage
    page = passage.pages[0] if passage.pages else None
    url = reverse("document-view", args=[passage.document_id])
    if page:
        url += f"?page={page}#page-{page}"
    return {
        "number": source.number,
        "document_id": passage.document_id,
        "document": passage.document_name,
        "pages": list(passage.pages),
        "section": passage.heading,
        "url": url,
        "excerpt": " ".join(passage.text.split())[:300],
        "chunk_ids": [c.pk for c in passage.chunks],
        "image": source.image_number is not None,
    }


def feedback_record(
    *, message: Message, rating: int, comment: str = "", user=None, owner_key: str = ""
):
    """Record (or change) one caller's thumbs up or down on an answer."""
    from .models import Feedback

    if message.role != Message.Role.ASSISTANT:
        raise ChatInputError("Only answers take feedback.")
    if rating not in (1, -1):
        raise ChatInputError("Rating must be 1 (helpful) or -1 (not helpful).")
    key = owner_key or (f"user:{user.pk}" if user is not None and user.is_authenticated else "")
    if not key:
        raise ChatInputError("Feedback needs a session, an account or an API key.")
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        owner_key=key,
        defaults={
            "rating": rating,
            "comment": comment.strip()[:2000],
            "user": user if user is not None and user.is_authenticated else None,
        },
    )
    return feedback

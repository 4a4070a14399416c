"""answer_stream: the one path from a question to a streamed, cited answer.

Chat page, widget, API and `manage.py ask` all call it:
question -> (standalone rewrite) -> retrieve -> pack -> LLM -> events, saved as a Message.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from ingest.models import Asset, KnowledgeBase
from ingest.pipeline.embed import Embedder
from ingest.pipeline.tokens import TokenCounter
from ingest.store import VectorStore

from .llm import (
    Finished,
    LLMClient,
    LLMError,
    ModelInfo,
    ReasoningDelta,
    StreamFailed,
    TextDelta,
    Usage,
)
from .models import Conversation, Message
from .packing import Budget, ImageInput, PackedRequest, Turn, pack_context
from .prompts import default_system_prompt, retrieval_only_answer, rewrite_messages
from .retrieval import Passage, RetrievalConfig, passages_from_hits, retrieve

logger = logging.getLogger("docent.chat")
RETRIEVAL_ONLY_CONTEXT = 256_000  # tokens: without a model, only the retrieval budget matters


class ChatInputError(ValueError):
    """The question or an attachment is unusable; the message says why."""


@dataclass(frozen=True)
class ChatTools:
    embedder: Embedder
    store: VectorStore
    counter: TokenCounter
    llm: LLMClient | None


@dataclass(frozen=True)
class ChatEvent:
    kind: str  # conversation | status | sources | delta | reasoning | error | done
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Screenshot:
    image: ImageInput
    png: bytes


_tools_lock = threading.Lock()
_llm_clients: dict[object, LLMClient] = {}


def chat_tools(kb: KnowledgeBase | None = None) -> ChatTools:
    """The heavy objects a question needs, built once per process on first use.

    A knowledge base's own model and temperature, when set, override the site defaults.
    """
    from ingest.pipeline.embed import get_embedder
    from ingest.pipeline.tokens import get_counter
    from ingest.store import get_store

    from .llm import resolve_config

    config = resolve_config(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        model=(kb.model if kb is not None and kb.model else settings.LLM_MODEL),
        mistral_api_key=settings.MISTRAL_API_KEY,
        openrouter_api_key=settings.OPENROUTER_API_KEY,
        timeout_seconds=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,
        temperature=(
            kb.temperature
            if kb is not None and kb.temperature is not None
            else settings.LLM_TEMPERATURE
        ),
        max_tokens=settings.LLM_MAX_TOKENS,
    )
    llm = None
    if config is not None:
        with _tools_lock:  # one client (and connection pool) per distinct configuration
            llm = _llm_clients.get(config) or _llm_clients.setdefault(config, LLMClient(config))
    return ChatTools(
        embedder=get_embedder(settings.EMBEDDING_MODEL_PATH),
        store=get_store(),
        counter=get_counter(),
        llm=llm,
    )


# --- inputs -----------------------------------------------------------------------------------

_ocr_lock = threading.Lock()


def screenshot_prepare(*, data: bytes) -> Screenshot:
    """Validate a pasted image and shrink it for the model (fast; OCR comes later)."""
    from PIL import Image

    from ingest.pipeline.images import ImageTooLarge, normalise_for_model, open_image

    if not data:
        raise ChatInputError("The attached image is empty.")
    if len(data) > settings.MAX_CHAT_IMAGE_BYTES:
        raise ChatInputError(
            f"The attached image is {len(data):,} bytes; the limit is {settings.MAX_CHAT_IMAGE_BYTES:,}."
        )
    try:
        pil = open_image(data, max_pixels=settings.MAX_IMAGE_PIXELS)
    except ImageTooLarge as exc:
        raise ChatInputError(str(exc)) from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ChatInputError(
            "The attachment is not an image Docent can read (PNG, JPEG, WEBP, GIF)."
        ) from exc
    payload, mime, width, height = normalise_for_model(pil)
    url = f"data:{mime};base64,{base64.b64encode(payload).decode()}"
    return Screenshot(ImageInput(url, width, height, label="screenshot"), payload)


def screenshot_read(*, shot: Screenshot) -> Screenshot:
    """The same screenshot with the text OCR finds in it."""
    import io

    from PIL import Image

    from ingest.pipeline.ocr import get_engine, ocr_image

    if not settings.OCR_ENABLED:
        return shot
    with _ocr_lock:  # one OCR at a time per process: it is CPU-bound and not reentrant
        text = ocr_image(Image.open(io.BytesIO(shot.png)), engine=get_engine()).text
    image = shot.image
    return Screenshot(
        ImageInput(image.data_url, image.width, image.height, text, image.label), shot.png
    )


def _asset_image(asset: Asset) -> ImageInput | None:
    try:
        with default_storage.open(asset.file.name, "rb") as handle:
            data = handle.read()
    except OSError:
        logger.warning("Asset %s is missing its file", asset.pk)
        return None
    url = f"data:{asset.mime_type};base64,{base64.b64encode(data).decode()}"
    return ImageInput(url, asset.width, asset.height, ocr_text=asset.ocr_text, label="source image")


# --- the question path ------------------------------------------------------------------------


def conversation_history(*, conversation: Conversation) -> list[Turn]:
    return [
        Turn(
            m.role,
            m.content + (f"\n\n[Screenshot text: {m.image_text}]" if m.image_text else ""),
            m.reasoning,
        )
        for m in conversation.messages.exclude(status=Message.Status.STREAMING)
        if m.content or m.reasoning
    ]


def question_standalone(*, question: str, history: Sequence[Turn], llm: LLMClient | None) -> str:
    """A follow-up rewritten to stand alone, so retrieval sees what "it" refers to."""
    if not history:
        return question
    last_user = next((t.content for t in reversed(history) if t.role == "user"), "")
    fallback = f"{last_user}\n{question}"
    if llm is None or not settings.REWRITE_FOLLOWUPS:
        return fallback
    try:
        rewritten = llm.complete(
            messages=rewrite_messages(history, question), temperature=0, max_tokens=200
        )
    except LLMError as exc:
        logger.warning("Follow-up rewrite failed, using the raw conversation: %s", exc)
        return fallback
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
    if screenshots:
        yield ChatEvent("status", {"stage": "reading screenshots"})
        screenshots = [screenshot_read(shot=shot) for shot in screenshots]
    user_message = Message.objects.create(
        conversation=conversation,
        role=Message.Role.USER,
        content=question,
        image_text="\n\n".join(s.image.ocr_text for s in screenshots if s.image.ocr_text),
    )
    if screenshots:
        user_message.images = _store_screenshots(conversation, user_message, screenshots)
        user_message.save(update_fields=["images"])

    info = tools.llm.info if tools.llm else None
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=tools.llm.config.model if tools.llm else "",
        retrieval_only=tools.llm is None,
    )
    state = {"done": False}
    try:
        yield ChatEvent("status", {"stage": "retrieving"})
        query = question_standalone(question=question, history=history, llm=tools.llm)
        if user_message.image_text:
            query += "\n" + user_message.image_text[:1000]
        reply.retrieval_query = query
        max_output = (tools.llm.config.max_tokens if tools.llm else None) or (
            info.default_max_tokens if info else 0
        )
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
            "sources", {"sources": reply.sources, "prompt_tokens": packed.prompt_tokens}
        )
        if tools.llm is None:
            reply.content = retrieval_only_answer(packed)
            yield ChatEvent("delta", {"text": reply.content})
        else:
            yield ChatEvent("status", {"stage": "generating"})
            yield from _stream_answer(tools.llm, packed, reply)
        if reply.status == Message.Status.STREAMING:
            reply.status = Message.Status.COMPLETE
        state["done"] = True
    except LLMError as exc:
        reply.status, reply.error = Message.Status.ERROR, str(exc)
        state["done"] = True
        yield ChatEvent("error", {"message": str(exc)})
    finally:
        if not state["done"] and reply.status == Message.Status.STREAMING:
            reply.status = Message.Status.STOPPED  # the client went away or pressed stop
        reply.save()
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
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
            image = _asset_image(asset) if asset is not None else None
            if image is not None:
                passage_images[index] = image
    budget = Budget(
        context_window=info.context_window if info else RETRIEVAL_ONLY_CONTEXT,
        max_output_tokens=max_output_tokens,
        margin=settings.CONTEXT_MARGIN_TOKENS,
        retrieval=retrieval_budget or kb.retrieval_budget or settings.RETRIEVAL_BUDGET_TOKENS,
    )
    return pack_context(
        system_prompt=default_system_prompt(kb),
        history=history,
        question=question,
        question_images=[s.image for s in screenshots],
        passages=passages,
        passage_images=passage_images,
        vision=bool(info and info.vision),
        budget=budget,
        counter=tools.counter,
    )


def _stream_answer(llm: LLMClient, packed: PackedRequest, reply: Message) -> Iterator[ChatEvent]:
    text: list[str] = []
    reasoning: list[str] = []
    with contextlib.closing(llm.stream(messages=packed.messages)) as events:
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    yield ChatEvent("delta", {"text": event.text})
                elif isinstance(event, ReasoningDelta):
                    reasoning.append(event.text)
                    yield ChatEvent("reasoning", {"text": event.text})
                elif isinstance(event, Usage):
                    reply.prompt_tokens = event.prompt_tokens
                    reply.completion_tokens = event.completion_tokens
                    if event.cost is not None:
                        reply.cost = Decimal(str(event.cost))
                elif isinstance(event, StreamFailed):
                    reply.status, reply.error = Message.Status.ERROR, event.message
                    yield ChatEvent("error", {"message": event.message, "partial": bool(text)})
                elif isinstance(event, Finished) and event.reason == "length":
                    yield ChatEvent(
                        "error", {"message": "The answer was cut off at the output limit."}
                    )
        finally:
            reply.content = "".join(text)
            reply.reasoning = "".join(reasoning)


def _store_screenshots(
    conversation: Conversation, message: Message, screenshots: Sequence[Screenshot]
) -> list[str]:
    return [
        default_storage.save(
            f"conversations/{conversation.uid}/{message.pk}-{n}.png", ContentFile(shot.png)
        )
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

"""pack_context: system prompt, history, sources, images and question in one exact budget.

Counts are Ministral 3 tokens, exactly as mistral-common encodes the request (see
ministral/tokens.py): the packed request never exceeds the budget, and the figure
reported is the figure the model server will count. The request is built of neutral
`ministral.prompt` parts; `assistant.llm` writes it in the provider's wire format.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from ministral.limits import MAX_IMAGES
from ministral.prompt import ChatMessage, Image, Part, Text
from ministral.tokens import ContentBuilder, TokenCounter

from .retrieval import Passage


@dataclass(frozen=True)
class ImageInput:
    image: Image  # already at most 1540 px on the longest side
    ocr_text: str = ""  # what a text-only model gets instead of the pixels
    label: str = ""


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str
    reasoning: str = ""  # a reasoning model's trace, kept in context for later turns


@dataclass(frozen=True)
class Budget:
    """Token budget: window - output - margin, with sources capped at `retrieval` tokens."""

    context_window: int
    max_output_tokens: int
    margin: int = 512
    retrieval: int = 32_000
    history_share: float = 0.25  # at most this share of the prompt budget goes to history

    @property
    def prompt(self) -> int:
        return self.context_window - self.max_output_tokens - self.margin


@dataclass(frozen=True)
class PackedSource:
    number: int  # what the answer cites: [number]
    passage: Passage
    image_number: int | None = None  # 1-based position among the request's images


@dataclass(frozen=True)
class PackedRequest:
    messages: list[ChatMessage]
    prompt_tokens: int  # exact, including the chat template's own tokens
    budget: int  # the prompt budget it was packed into
    sources: tuple[PackedSource, ...]
    images: tuple[ImageInput, ...]
    history_turns: int  # earlier turns that made it in
    omitted_passages: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    # False when nothing in the knowledge base matched the question closely enough (see
    # assistant/relevance.py): then no source was sent, and these are the nearest
    # documents' names, for saying where else to look.
    matched: bool = True
    nearest_documents: tuple[str, ...] = ()


class PackingError(ValueError):
    """Even the question alone does not fit the budget."""


def pack_context(
    *,
    system_prompt: str | Sequence[Part],
    history: Sequence[Turn],
    question: str,
    question_images: Sequence[ImageInput],
    passages: Sequence[Passage],
    passage_images: dict[int, ImageInput],
    vision: bool,
    budget: Budget,
    counter: TokenCounter,
) -> PackedRequest:
    """Pack a chat request. passage_images maps a passage's index to its image, if any.

    Priority when space runs out: the question and its screenshots, then sources in
    rank order (each with its image while images remain), then the most recent history.
    """
    notes: list[str] = []
    parts = (Text(system_prompt),) if isinstance(system_prompt, str) else tuple(system_prompt)
    system = ChatMessage("system", parts)
    images = list(question_images)
    if len(images) > MAX_IMAGES:
        notes.append(f"only the first {MAX_IMAGES} attached images were sent")
        images = images[:MAX_IMAGES]
    history_messages = _fit_history(system, history, budget, counter)
    question_part = Text(_question_text(question, images, vision))
    # Pick source images up front (they sit after the text), then pack text around them.
    room = MAX_IMAGES - len(images) if vision else 0
    chosen_images = _renumber(sorted(passage_images)[:room], images)
    while True:
        tail_images = images + [passage_images[i] for i in chosen_images] if vision else []
        tail: list[Part] = [question_part, *(img.image for img in tail_images)]
        builder = ContentBuilder(history=[system, *history_messages], tail=tail, counter=counter)
        if builder.total > budget.prompt:
            if history_messages:
                history_messages = history_messages[2:]
                continue
            if chosen_images:
                chosen_images = {}
                continue
            raise PackingError(
                f"The question and its images need {builder.total:,} tokens, more than the "
                f"{budget.prompt:,} available."
            )
        packed = _add_sources(builder, passages, chosen_images, budget)
        kept = {index for index, _ in packed}
        if all(index in kept for index in chosen_images):
            break
        # A source whose image was reserved did not fit: drop the image and pack again.
        chosen_images = _renumber([i for i in chosen_images if i in kept], images)
    sources = tuple(
        PackedSource(n + 1, passages[index], chosen_images.get(index))
        for n, (index, _) in enumerate(packed)
    )
    if not sources:
        builder = ContentBuilder(history=[system, *history_messages], tail=tail, counter=counter)
        builder.add(Text(NO_SOURCES))
    messages = [system, *history_messages, builder.message()]
    omitted = len(passages) - len(sources)
    return PackedRequest(
        messages=messages,
        prompt_tokens=builder.total,
        budget=budget.prompt,
        sources=sources,
        images=tuple(tail_images),
        history_turns=len(history_messages),
        omitted_passages=omitted,
        notes=tuple(notes),
    )


NO_SOURCES = "<sources>\nThe knowledge base returned no passages for this question.\n</sources>"


def _add_sources(
    builder: ContentBuilder,
    passages: Sequence[Passage],
    chosen_images: dict[int, int],
    budget: Budget,
) -> list[tuple[int, int]]:
    """Greedily add source blocks in rank order; a block that does not fit is skipped.

    Each passage's stored token count (from ingest) screens out blocks that clearly
    cannot fit before their text is encoded, which keeps packing a full window fast.
    """
    start = builder.total
    packed: list[tuple[int, int]] = []
    for index, passage in enumerate(passages):
        room = min(budget.prompt - builder.total, budget.retrieval - (builder.total - start))
        if room < _SMALLEST_SOURCE:
            break
        if passage.token_count > room + _ESTIMATE_SLACK:
            continue
        part = Text(format_source(len(packed) + 1, passage, chosen_images.get(index)))
        cost = builder.cost(part)
        if cost > room:
            continue
        builder.add(part, cost)
        packed.append((index, cost))
    return packed


_SMALLEST_SOURCE = 24  # tokens: below this no source block fits (its tags alone cost ~20)
_ESTIMATE_SLACK = 64  # tokens: stored counts may differ a little from the formatted block


def _renumber(indexes: list[int], question_images: list[ImageInput]) -> dict[int, int]:
    return {index: len(question_images) + n + 1 for n, index in enumerate(sorted(indexes))}


def _fit_history(
    system: ChatMessage, history: Sequence[Turn], budget: Budget, counter: TokenCounter
) -> list[ChatMessage]:
    """The most recent complete turns (user + assistant pairs) within the history share."""
    limit = int(budget.prompt * budget.history_share)
    messages = [_turn_message(t) for t in history if t.content or t.reasoning]
    # A request must alternate user/assistant and the packed question is a user turn.
    while messages and messages[-1].role == "user":
        messages.pop()
    while messages and messages[0].role != "user":
        messages.pop(0)
    while messages:
        cost = counter.messages([system, *messages]) - counter.messages([system])
        if cost <= limit:
            break
        messages = messages[2:]
    return messages


def _turn_message(turn: Turn) -> ChatMessage:
    reasoning = turn.reasoning if turn.role == "assistant" else ""
    return ChatMessage.text(
        "user" if turn.role == "user" else "assistant", turn.content or " ", reasoning=reasoning
    )


def _question_text(question: str, images: Sequence[ImageInput], vision: bool) -> str:
    lines = [f"Question: {question.strip()}"]
    if images and vision:
        lines.append(
            f"The person attached {len(images)} screenshot(s): image(s) 1"
            + (f"-{len(images)}" if len(images) > 1 else "")
            + " below."
        )
    elif images:
        for n, image in enumerate(images, start=1):
            text = image.ocr_text.strip() or "(no text could be read from it)"
            lines.append(f"Text read from attached screenshot {n}:\n{text}")
    return "\n".join(lines)


# A model reads `</SOURCE>`, `< /source >`, `＜/source＞` (fullwidth) or `<\u200b/source>`
# (a zero-width character inside) as a closing tag just as it reads `</source>`.
_SOURCE_TAG = re.compile(r"<\s*/?\s*sources?\b", re.IGNORECASE)
# Every character whose NFKC form contains "<" (a test checks the list against Unicode).
_READS_AS_LT = ("<", "\ufe64", "\uff1c")


def neutralise_tags(text: str) -> str:
    """`text` with every "<" that would open or close a source tag written as "&lt;".

    The match runs on a copy normalised the way a reader sees it (NFKC, invisible format
    characters removed); the text itself is kept as it was, except for those "<".
    """
    if not any(char in text for char in _READS_AS_LT):
        return text  # nothing can open a tag: the usual case, decided in C
    if text.isascii():  # NFKC and format characters leave ASCII as it is
        starts = {m.start() for m in _SOURCE_TAG.finditer(text)}
        return "".join("&lt;" if i in starts else c for i, c in enumerate(text)) if starts else text
    seen: list[str] = []
    origin: list[int] = []  # index in `text` of each character in `seen`
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cf":
            continue
        for normal in unicodedata.normalize("NFKC", char):
            seen.append(normal)
            origin.append(index)
    starts = {origin[m.start()] for m in _SOURCE_TAG.finditer("".join(seen))}
    if not starts:
        return text
    return "".join("&lt;" if i in starts else char for i, char in enumerate(text))


def format_source(number: int, passage: Passage, image_number: int | None = None) -> str:
    """One delimited source block; its contents are data, never instructions."""
    attrs = f'id="{number}" document="{_attr(passage.document_name)}"'
    if passage.pages:
        first, last = passage.pages[0], passage.pages[-1]
        attrs += f' page="{first}"' if first == last else f' pages="{first}-{last}"'
    if passage.heading:
        attrs += f' section="{_attr(passage.heading)}"'
    if image_number is not None:
        attrs += f' image="{image_number}"'
    body = neutralise_tags(passage.text)
    return f"<source {attrs}>\n{body.strip()}\n</source>"


def _attr(value: str) -> str:
    return html.escape(" ".join(value.split()), quote=True)[:200]

"""Pages of text -> chunks that fit the embedder's window, following the document's shape.

all-MiniLM-L6-v2 reads at most 256 word pieces (254 after [CLS]/[SEP]); anything past
that is silently ignored, so every chunk, heading trail included, is measured with the
embedder's own tokenizer. Chunks stay inside one page so citations name a real page,
break at headings and paragraphs where they can, and overlap when a passage is split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from .types import ChunkDraft, PageText

CountTokens = Callable[[list[str]], list[int]]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+(?=\S)")
_FENCE = re.compile(r"^(```|~~~)")


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    heading: str
    new_block: bool  # first piece of a paragraph: joined with a blank line, not a space


class Chunker:
    """Chunks pages one at a time, carrying the heading trail from page to page."""

    def __init__(
        self,
        *,
        count_tokens: CountTokens,
        max_tokens: int,
        overlap_tokens: int,
        count_llm_tokens: Callable[[str], int] | None = None,
    ) -> None:
        """count_tokens: the embedder's word pieces (chunk sizes); count_llm_tokens: the
        chat model's tokens of each chunk, kept with it for packing."""
        self.count_tokens = count_tokens
        self.count_llm_tokens = count_llm_tokens
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.trail: list[tuple[int, str]] = []
        self.next_ordinal = 0

    def feed(self, page: PageText) -> list[ChunkDraft]:
        units: list[_Unit] = []
        for level, text in _blocks(page.text):
            if level:
                self.trail = [(lv, t) for lv, t in self.trail if lv < level] + [(level, text)]
                continue
            heading = " > ".join(t for _, t in self.trail)
            units.extend(_units(text, heading, self.count_tokens, self.max_tokens))
        drafts = _pack(
            units, page, self.count_tokens, self.max_tokens, self.overlap_tokens, self.next_ordinal
        )
        self.next_ordinal += len(drafts)
        if self.count_llm_tokens is not None:
            count = self.count_llm_tokens
            drafts = [replace(d, llm_tokens=count(d.text)) for d in drafts]
        return drafts


def _blocks(text: str) -> list[tuple[int, str]]:
    """(heading level or 0, text) in order; fenced code stays one block."""
    out: list[tuple[int, str]] = []
    paragraph: list[str] = []
    in_fence = False

    def flush() -> None:
        if paragraph and "".join(paragraph).strip():
            out.append((0, "\n".join(paragraph).strip("\n")))
        paragraph.clear()

    for line in text.split("\n"):
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            paragraph.append(line)
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            flush()
            out.append((len(heading.group(1)), heading.group(2).strip()[:200]))
        elif not line.strip() and not in_fence:
            flush()
        else:
            paragraph.append(line)
    flush()
    return out


def _units(text: str, heading: str, count: CountTokens, max_tokens: int) -> list[_Unit]:
    """One paragraph as packable pieces, each small enough to fit a chunk on its own."""
    budget = max(8, max_tokens - (count([heading])[0] if heading else 0))
    pieces = [text]
    for splitter in (_split_sentences, _split_lines, _split_words):
        sizes = count(pieces)
        if all(n <= budget for n in sizes):
            break
        refined: list[str] = []
        for piece, n in zip(pieces, sizes, strict=True):
            refined.extend(splitter(piece, count, budget) if n > budget else [piece])
        pieces = [p for p in refined if p.strip()]
    sizes = count(pieces)
    return [
        _Unit(piece, n, heading, new_block=(i == 0))
        for i, (piece, n) in enumerate(zip(pieces, sizes, strict=True))
    ]


def _split_sentences(text: str, count: CountTokens, budget: int) -> list[str]:
    return _SENTENCE_END.split(text)


def _split_lines(text: str, count: CountTokens, budget: int) -> list[str]:
    return text.split("\n")


def _split_words(text: str, count: CountTokens, budget: int) -> list[str]:
    """Greedy runs of whole words; word-piece counts add up across whitespace exactly."""
    words: list[str] = []
    for word in text.split():
        # A single "word" longer than the window (a hash, base64) is cut into slices.
        words.extend(word[i : i + budget] for i in range(0, len(word), budget))
    sizes = count(words)
    pieces: list[str] = []
    run: list[str] = []
    total = 0
    for word, n in zip(words, sizes, strict=True):
        if run and total + n > budget:
            pieces.append(" ".join(run))
            run, total = [], 0
        run.append(word)
        total += n
    if run:
        pieces.append(" ".join(run))
    return pieces


def _pack(
    units: list[_Unit],
    page: PageText,
    count: CountTokens,
    max_tokens: int,
    overlap_tokens: int,
    first_ordinal: int,
) -> list[ChunkDraft]:
    drafts: list[ChunkDraft] = []
    current: list[_Unit] = []
    heading_cost: dict[str, int] = {}

    def cost(heading: str) -> int:
        if heading not in heading_cost:
            heading_cost[heading] = count([heading])[0] if heading else 0
        return heading_cost[heading]

    def emit() -> None:
        text = _join(current)
        heading = current[0].heading
        total = cost(heading) + sum(u.tokens for u in current)
        drafts.append(
            ChunkDraft(
                ordinal=first_ordinal + len(drafts),
                page=page.number,
                heading=heading,
                text=text,
                embed_tokens=total,
                image_index=page.image_index,
            )
        )

    for unit in units:
        if current and unit.heading != current[0].heading:
            emit()
            current = []
        if (
            current
            and cost(unit.heading) + sum(u.tokens for u in current) + unit.tokens > max_tokens
        ):
            emit()
            current = _overlap(current, overlap_tokens, cost(unit.heading), unit.tokens, max_tokens)
        current.append(unit)
    if current:
        emit()
    return drafts


def _overlap(
    previous: list[_Unit],
    overlap_tokens: int,
    heading_tokens: int,
    next_tokens: int,
    max_tokens: int,
) -> list[_Unit]:
    """Trailing pieces of the chunk just closed, repeated so a split passage keeps context."""
    carried: list[_Unit] = []
    total = 0
    for unit in reversed(previous[1:]):
        if total + unit.tokens > overlap_tokens:
            break
        if heading_tokens + total + unit.tokens + next_tokens > max_tokens:
            break
        carried.insert(0, unit)
        total += unit.tokens
    return carried


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i:
            parts.append("\n\n" if unit.new_block else " ")
        parts.append(unit.text.strip("\n") if unit.new_block else unit.text.strip())
    return "".join(parts).strip()


def merge_chunk_texts(texts: list[str]) -> str:
    """Join consecutive chunks of one page or passage, dropping the overlap each repeats."""
    merged = texts[0] if texts else ""
    for text in texts[1:]:
        merged += _without_overlap(merged, text)
    return merged


_MIN_OVERLAP = 11  # characters: a shorter repeat is a coincidence, not the chunker's overlap
_MAX_OVERLAP = 2000  # characters: the chunker never repeats more


def _without_overlap(before: str, after: str) -> str:
    """`after` without its longest head that is also the tail of `before`.

    Only the places where `after`'s first characters occur in `before`'s tail can start
    an overlap, and `str.find` finds them in C, left to right, so the first one that
    holds is the longest: a merge costs one scan, not one comparison per length.
    """
    tail = before[-min(len(before), len(after), _MAX_OVERLAP) :]
    needle = after[:_MIN_OVERLAP]
    if len(needle) < _MIN_OVERLAP:
        return "\n\n" + after
    at = tail.find(needle)
    while at != -1:
        if after.startswith(tail[at:]):
            return after[len(tail) - at :]
        at = tail.find(needle, at + 1)
    return "\n\n" + after

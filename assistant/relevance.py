"""Whether a knowledge base answers a question at all, and which passages are too weak.

The bar is the knowledge base's own calibrated threshold (ingest/services/calibration.py):
a cosine similarity to the question. A question whose best passage is below it gets
"nothing here matches" instead of the nearest filler. One exception: a word that looks
like a code or an identifier (E-42, 0x80070005, os.path, max_tokens) that BM25 found
verbatim in a passage is a match whatever the vectors say, since embedders read such
tokens poorly.

Screenshots are not judged by the bar. The OCR text of a screenshot embeds far from a
description of what it shows (bench/screenshot_similarity.py: 11 of Docent's own
screenshots, each asked for by a description, reach cosine 0.08-0.57 to their own text,
median 0.36), so a question whose best hit is an image whose words BM25 found too, or
that comes with a pasted screenshot, is never refused, and image passages are never
dropped as weak.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .retrieval import Hit, Passage

# Of a question that matches, its best passages go to the model whatever their own score:
# the right one is often ranked second or third a little below the bar.
ALWAYS_SENT = 3
_WORD = re.compile(r"[\w][\w.\-]*[\w]|\w")


@dataclass(frozen=True)
class Match:
    """The verdict on one question's retrieval."""

    matched: bool
    best: float | None  # the best passage's cosine similarity; None: no dense search ran
    threshold: float


def code_words(text: str) -> set[str]:
    """The words of `text` that read as codes or identifiers, lower-cased: they hold a digit,
    an underscore or an inner dot (E-42, HTTP404, os.path, max_tokens)."""
    words = set()
    for word in _WORD.findall(text):
        if any(c.isdigit() for c in word) or "_" in word or re.search(r"\w\.\w", word):
            words.add(word.lower())
    return words


def hits_match(
    *, hits: Sequence[Hit], query: str, threshold: float, with_screenshots: bool = False
) -> Match:
    """Whether the hits answer `query`: the best similarity reaches `threshold`, a code
    word of the query appears in a passage BM25 found, or screenshots are involved (the
    best hit is one, or the question came with one)."""
    best = max((h.similarity for h in hits if h.similarity is not None), default=None)
    if best is None:  # word search only (no vectors to compare): it found something or not
        return Match(bool(hits), None, threshold)
    # An image on top counts when its words were found too: an unrelated question can
    # top a small collection's screenshot by its vector alone.
    image_first = (
        bool(hits) and hits[0].chunk.asset_id is not None and (hits[0].lexical_rank is not None)
    )
    if best >= threshold or with_screenshots or image_first or _code_found(hits, query):
        return Match(True, best, threshold)
    return Match(False, best, threshold)


def passages_strong(passages: Sequence[Passage], *, match: Match, query: str) -> list[Passage]:
    """The passages worth sending: none when nothing matches; otherwise the ALWAYS_SENT
    best, and the rest at or above the threshold, holding an image, or holding one of the
    query's code words. Lexical-only searches keep all."""
    if not match.matched:
        return []
    if match.best is None:
        return list(passages)
    codes = code_words(query)
    return [
        p
        for rank, p in enumerate(passages)
        if rank < ALWAYS_SENT
        or (p.similarity is not None and p.similarity >= match.threshold)
        or any(c.asset_id is not None for c in p.chunks)
        or (codes and _holds(p.text, codes))
    ]


def _code_found(hits: Sequence[Hit], query: str) -> bool:
    codes = code_words(query)
    return bool(codes) and any(
        h.lexical_rank is not None and _holds(h.chunk.text, codes) for h in hits[:20]
    )


def _holds(text: str, codes: set[str]) -> bool:
    return bool(codes & {w.lower() for w in _WORD.findall(text)})

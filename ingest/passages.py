"""Finding a cited passage in a page's text, so the viewer can highlight it.

A chunk's text and the page it came from rarely agree character for character (PDF text
layers split hyphenated words, Markdown keeps ``#`` and ``-``, whitespace differs), so
both are compared as sequences of lower-cased words. Matching is deliberately strict:
a highlight is drawn only when at least half the passage's words are found, in order,
inside one span of the page about the passage's length; a wrong highlight is worse
than none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_MATCHED = 0.5  # share of the passage's words that must be found to highlight at all
_MAX_PASSAGE_WORDS = 2000  # a passage is a few chunks; longer input is cut, not slowed on


@dataclass(frozen=True)
class Word:
    text: str  # lower-cased
    start: int  # offset of the first character (in whatever units the caller uses)
    end: int  # offset just past the last character


@dataclass(frozen=True)
class Span:
    start: int  # `Word.start` of the first matched word
    end: int  # `Word.end` of the last matched word
    matched: float  # share of the passage's words found, 0-1


def words_of(text: str) -> list[Word]:
    """The words of a text with their character offsets into it."""
    return [Word(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def passage_find(*, page: Sequence[Word], passage: str) -> Span | None:
    """Where `passage` is on a page of words, or None when under half of it matches.

    The best window (the passage's length in words, a quarter more for slack) is the
    one sharing the most words with the passage; within it the words are aligned in
    order, and the span runs from the first aligned word to the last.
    """
    wanted = [w.text for w in words_of(passage)][:_MAX_PASSAGE_WORDS]
    if not wanted or not page:
        return None
    size = min(len(page), len(wanted) + len(wanted) // 4 + 1)
    start = _best_window(page, wanted, size)
    window = page[start : start + size]
    matcher = SequenceMatcher(None, [w.text for w in window], wanted, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size]
    matched = sum(b.size for b in blocks) / len(wanted)
    if not blocks or matched < MIN_MATCHED:
        return None
    first, last = blocks[0], blocks[-1]
    return Span(window[first.a].start, window[last.a + last.size - 1].end, matched)


def _best_window(page: Sequence[Word], wanted: list[str], size: int) -> int:
    """Start of the `size`-word window of the page sharing the most words with `wanted`
    (counted with multiplicity), updated word by word: linear in the page's length."""
    need = Counter(wanted)
    have: Counter[str] = Counter()
    shared = 0
    for word in page[:size]:
        have[word.text] += 1
        if have[word.text] <= need[word.text]:
            shared += 1
    best, best_start = shared, 0
    for start in range(1, len(page) - size + 1):
        gone, came = page[start - 1].text, page[start + size - 1].text
        if have[gone] <= need[gone]:
            shared -= 1
        have[gone] -= 1
        have[came] += 1
        if have[came] <= need[came]:
            shared += 1
        if shared > best:
            best, best_start = shared, start
    return best_start

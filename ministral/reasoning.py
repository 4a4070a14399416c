"""Reasoning models: their system prompt, and keeping inline ``[THINK]…[/THINK]`` apart.

A self-hosted Ministral 3 Reasoning server run without a reasoning parser (llama.cpp,
vLLM without ``--reasoning-parser mistral``) streams its trace inside the answer's text.
:class:`ThinkSplitter` separates the two as the text arrives, even when a marker is split
across chunks, so the trace never reaches the visible answer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .prompt import Part, Text, Thinking

OPEN, CLOSE = "[THINK]", "[/THINK]"
_DATA = Path(__file__).with_name("data")


@cache
def reasoning_system_parts() -> tuple[Part, ...]:
    """The model card's SYSTEM_PROMPT.txt as text and thinking parts (shipped, never fetched)."""
    text = (_DATA / "reasoning_system_prompt.txt").read_text(encoding="utf-8")
    before, _, rest = text.partition(OPEN)
    thought, _, after = rest.partition(CLOSE)
    return (Text(before), Thinking(thought), Text(after))


class ThinkSplitter:
    """Splits streamed text into (is_reasoning, text) pieces at ``[THINK]``/``[/THINK]``.

    Only a possible partial marker at the end of a chunk is held back (at most 7
    characters), so the answer still streams as it arrives.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._thinking = False
        self._after_close = False  # strip the whitespace a model puts after [/THINK]
        self.saw_marker = False  # the text held [THINK] or [/THINK]

    def feed(self, text: str) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        data = self._pending + text
        self._pending = ""
        while data:
            marker = CLOSE if self._thinking else OPEN
            index = data.find(marker)
            if index >= 0:
                self._emit(out, data[:index])
                data = data[index + len(marker) :]
                self._thinking = not self._thinking
                self._after_close = not self._thinking
                self.saw_marker = True
                continue
            keep = _partial_suffix(data, marker)
            self._emit(out, data[: len(data) - keep])
            self._pending = data[len(data) - keep :]
            break
        return out

    def flush(self) -> list[tuple[bool, str]]:
        """What is left at the end of the stream (a held-back partial marker is just text)."""
        out: list[tuple[bool, str]] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[tuple[bool, str]], text: str) -> None:
        if not self._thinking and self._after_close:
            text = text.lstrip()
            if text:
                self._after_close = False
        if text:
            out.append((self._thinking, text))


def _partial_suffix(data: str, marker: str) -> int:
    """Length of the longest end of ``data`` that could begin ``marker``."""
    for size in range(min(len(marker) - 1, len(data)), 0, -1):
        if marker.startswith(data[-size:]):
            return size
    return 0

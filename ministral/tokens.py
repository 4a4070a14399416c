"""Exact Ministral 3 prompt-token counts, mirroring mistral-common 1.13.1 (V13 instruct template).

All counts are in tokens; image sizes are in pixels. Text uses the Tekken BPE shipped with
mistral-common (``data/tekken_240718.json``, the same BPE as Ministral 3). The request template is
``<s>`` + per message ``[SYSTEM_PROMPT]..[/SYSTEM_PROMPT]`` / ``[INST]..[/INST]`` / ``answer</s>``;
consecutive user (or assistant) messages are merged and adjacent text parts are joined with
``"\\n\\n"``; each image is ``rows * (cols + 1)`` tokens; reasoning is ``[THINK]..[/THINK]``.
Requests are the neutral :class:`~ministral.prompt.ChatMessage` shape; `assistant.llm` writes
them on the wire in a form mistral-common encodes to exactly these counts.
Like mistral-common, BPE counts are not additive across concatenation: use :class:`ContentBuilder`
(or :meth:`TokenCounter.join_cost`) to pack incrementally.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .limits import IMAGE_CELL_PX, MAX_IMAGE_SIDE_PX
from .prompt import ChatMessage, Image, Part, Text, Thinking

_LEFT_WINDOW = 65_536  # characters of a growing text run looked at when joining a new part
BOS_TOKENS = 1  # <s>, once per request
THINK_TOKENS = 2  # [THINK] + [/THINK] around a closed reasoning chunk
PART_SEPARATOR = "\n\n"  # how mistral-common joins adjacent text parts / merged messages
_ROLE_OVERHEAD = {"system": 2, "user": 2, "assistant": 1}  # markers, or </s> for assistant
# Positions that are always BPE pre-token boundaries (a letter followed by a space/newline, or a
# newline followed by a letter): text split there can be counted piecewise, exactly. Proof sketch:
# in the Tekken pre-tokenizer regex letters only occur in the two letter alternatives, which
# cannot contain a space/newline after their first char, and nothing else spans a newline+letter.
_BOUNDARY = re.compile(r"(?<=[^\W\d_])(?=[ \n])|(?<=\n)(?=[^\W\d_])")
_BOUNDARY_REVERSED = re.compile(r"(?<=[ \n])(?=[^\W\d_])|(?<=[^\W\d_])(?=\n)")  # same, mirrored


def overhead(role: str) -> int:
    """Template tokens one message adds besides its content (system 2, user 2, assistant 1)."""
    return _ROLE_OVERHEAD[role]


def image_tokens(width: int, height: int, *, max_size: int = MAX_IMAGE_SIDE_PX) -> int:
    """Tokens for a ``width`` x ``height`` pixel image, exactly as mistral-common's ImageEncoder."""
    w: float = width
    h: float = height
    ratio = max(h / max_size, w / max_size)
    if ratio > 1:  # downscale only; same float ops and banker's rounding as mistral-common
        w, h = max(round(w / ratio), 1), max(round(h / ratio), 1)
    cols = (int(w) - 1) // IMAGE_CELL_PX + 1
    rows = (int(h) - 1) // IMAGE_CELL_PX + 1
    return rows * (cols + 1)


def _tail_start(s: str) -> int:
    """Index of a late safe split point in ``s`` (0 if none): s[k:] can be counted on its own."""
    for window in (512, 8192, len(s)):
        start = max(0, len(s) - window)
        # The first boundary of the reversed window is the last one of the window; scanning
        # forward through every boundary of it made this the slowest step of packing.
        m = _BOUNDARY_REVERSED.search(s[start:][::-1])
        if m:
            return len(s) - m.start()
        if start == 0:
            break
    return 0


def _head_end(s: str) -> int:
    """Index of an early safe split point in ``s`` (len(s) if none)."""
    for window in (512, 8192, len(s) + 1):
        m = _BOUNDARY.search(s, 1, window)
        if m:
            return m.start()
    return len(s)


class TokenCounter:
    """Counts Ministral 3 tokens (raw BPE text, images, whole OpenAI chat requests)."""

    def __init__(self, encode: Callable[[str], list[int]]) -> None:
        """``encode`` returns raw BPE ids for a string (no BOS/EOS), e.g. tiktoken's encode."""
        self._encode = encode

    def text(self, s: str) -> int:
        """Raw BPE tokens of ``s`` (no BOS/EOS); ~2-5 M tokens/s on one core."""
        return len(self._encode(s))

    def join_cost(self, left: str, sep: str, right: str) -> int:
        """``text(left + sep + right) - text(left) - text(right)``, from a short window only."""
        k, m = _tail_start(left), _head_end(right)
        a, b = left[k:], right[:m]
        return self.text(a + sep + b) - self.text(a) - self.text(b)

    def image(self, image: Image) -> int:
        """Tokens of one image (from its size in pixels; no pixel is decoded)."""
        return image_tokens(image.width, image.height)

    def messages(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of a chat request, equal to mistral-common's V13 encoding.

        Message order is not validated (mistral-common rejects e.g. a final assistant message).
        """
        if not messages:
            raise ValueError("a request needs at least one message")
        total, i = BOS_TOKENS, 0
        while i < len(messages):
            role, content = self._convert(messages[i])
            if role == "system":
                total += 2 + self._chunks_cost(_aggregate([content]))
                i += 1
                continue
            group = [content]
            i += 1
            while i < len(messages) and messages[i].role == role:
                group.append(self._convert(messages[i])[1])
                i += 1
            merged = _aggregate(group)
            if role == "user":
                total += 2 + self._chunks_cost(merged)
            elif not merged:
                raise ValueError("assistant message without content")
            else:  # plain-text answers are right-stripped of spaces, chunk lists are not
                total += 1 + self._chunks_cost(
                    merged.rstrip(" ") if isinstance(merged, str) else merged
                )
        return total

    def _chunks_cost(self, content: str | list[Any]) -> int:
        if isinstance(content, str):
            return self.text(content)
        return sum(self.text(c) if isinstance(c, str) else c(self) for c in content)

    def _convert(self, message: ChatMessage) -> tuple[str, Any]:
        """(role, content as str / list of str | counting callables) like ``from_openai``."""
        role = message.role
        if role not in _ROLE_OVERHEAD:
            raise ValueError(f"unsupported message role {role!r}")
        parts = message.parts
        content: Any
        if len(parts) == 1 and isinstance(parts[0], Text):
            content = parts[0].text  # sent as a plain string
        else:
            content = [self._chunk(part, role) for part in parts]
        if role == "assistant" and message.reasoning:
            # mistral-common turns reasoning_content into a closed ThinkChunk before the answer
            think = _think_cost(message.reasoning, True)
            content = [think] + (content if isinstance(content, list) else [content])
        elif message.reasoning:
            raise ValueError(f"a {role} message cannot carry reasoning")
        return role, content

    def _chunk(self, part: Part, role: str) -> Any:
        if isinstance(part, Text):
            return part.text
        if isinstance(part, Image) and role == "user":
            n = self.image(part)
            return lambda _c: n
        if isinstance(part, Thinking) and role in ("system", "assistant"):
            return _think_cost(part.text, True)
        raise ValueError(f"unsupported {type(part).__name__} part in a {role} message")


def _think_cost(thinking: str, closed: bool) -> Callable[[TokenCounter], int]:
    return lambda c: c.text(thinking) + (THINK_TOKENS if closed else 1)


def _aggregate(contents: Sequence[Any]) -> str | list[Any]:
    """mistral-common's ``_aggregate_content_chunks_impl`` (V13: both separators are "\\n\\n")."""
    out: list[Any] = []
    cur: list[str] = []
    for content in contents:
        if not content:
            continue
        for chunk in [content] if isinstance(content, str) else content:
            if not isinstance(chunk, str):
                if cur:
                    out.append("".join(cur))
                    cur.clear()
                out.append(chunk)
            elif chunk:
                cur.append(PART_SEPARATOR + chunk if cur else chunk)
    if cur and out:
        out.append("".join(cur))
    return out if out else "".join(cur)


_lock = threading.Lock()
_counter: TokenCounter | None = None


def get_counter() -> TokenCounter:
    """The process-wide counter; loads the Tekken BPE (~1 s) on first use only."""
    global _counter
    with _lock:
        if _counter is None:
            import mistral_common
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            path = Path(mistral_common.__file__).parent / "data" / "tekken_240718.json"
            # Tekkenizer.encode == tiktoken encode + a per-id offset; skipping the offset list
            # copy makes counting ~1.7x faster.
            _counter = TokenCounter(Tekkenizer.from_file(path)._model.encode_ordinary)
        return _counter


def count_messages(messages: Sequence[ChatMessage]) -> int:
    """Exact prompt tokens of a chat request (see :meth:`TokenCounter.messages`)."""
    return get_counter().messages(messages)


class ContentBuilder:
    """Builds one user message part by part while keeping its exact token count.

    ``history`` holds the earlier messages (it must not end with a user message) and ``tail`` the
    fixed parts that come after everything added (e.g. the question). Invariant:
    ``total == count_messages([*history, message()])``, so a packer can test ``cost(part)``
    against its budget before each ``add`` and never overshoot. ``base`` (history incl. BOS) and
    ``tokens`` (this message incl. [INST]/[/INST]) are token counts; images cost image_tokens().

        b = ContentBuilder(history=[system], tail=[Text(question)])
        for part in candidate_parts:
            if b.total + b.cost(part) <= window - max_tokens:
                b.add(part)
        request = [system, b.message()]
    """

    def __init__(
        self,
        history: Sequence[ChatMessage] = (),
        tail: Sequence[Part] = (),
        counter: TokenCounter | None = None,
    ) -> None:
        """Parts are :class:`Text` or :class:`Image`."""
        self.counter = counter or get_counter()
        if history and history[-1].role == "user":
            raise ValueError("history must not end with a user message (it would be merged)")
        self.base = self.counter.messages(history) if history else BOS_TOKENS  # tokens
        self.added: list[Part] = []
        self.tail = list(tail)
        self._head: list[list[str] | int] = []  # text runs (pieces joined by "\n\n"), images
        tail_runs = _aggregate([[self._run(p) for p in self.tail]])
        self._tail: list[str | int] = [tail_runs] if isinstance(tail_runs, str) else tail_runs
        self._tail = [r for r in self._tail if r != ""]
        self.tokens = 2 + sum(r if isinstance(r, int) else self.counter.text(r) for r in self._tail)

    @property
    def total(self) -> int:
        """Tokens of the whole request: history + this message."""
        return self.base + self.tokens

    def message(self) -> ChatMessage:
        """The user message: added parts followed by the tail."""
        return ChatMessage("user", (*self.added, *self.tail))

    def cost(self, part: Part) -> int:
        """Exact tokens that ``add(part)`` would add (may be 0 for an empty text)."""
        return self._cost(self._run(part))

    def add(self, part: Part, cost: int | None = None) -> int:
        """Append ``part`` before the tail; returns the tokens it added.

        ``cost`` may pass in what :meth:`cost` just returned for this part, to skip counting
        the same text twice; it must come from the builder's current state.
        """
        run = self._run(part)
        delta = self._cost(run) if cost is None else cost
        self.added.append(part)
        if isinstance(run, int) or not self._head or not isinstance(self._head[-1], list):
            if run != "":
                self._head.append([run] if isinstance(run, str) else run)
        elif run:
            self._head[-1].append(run)
        self.tokens += delta
        return delta

    def _left(self) -> str | None:
        """The trailing text run (its last _LEFT_WINDOW characters suffice to join exactly)."""
        if not self._head or not isinstance(self._head[-1], list):
            return None
        pieces: list[str] = []
        size = 0
        for piece in reversed(self._head[-1]):
            pieces.append(piece)
            size += len(piece) + len(PART_SEPARATOR)
            if size >= _LEFT_WINDOW:
                break
        left = PART_SEPARATOR.join(reversed(pieces))
        if len(pieces) < len(self._head[-1]) and _tail_start(left) == 0:
            left = PART_SEPARATOR.join(self._head[-1])  # no safe split in the window: use all
        return left

    def _cost(self, run: str | int) -> int:
        left = self._left()
        right = self._tail[0] if self._tail and isinstance(self._tail[0], str) else None
        c, sep = self.counter, PART_SEPARATOR
        if isinstance(run, int):
            split = c.join_cost(left, sep, right) if left and right else 0
            return run - split
        if not run:
            return 0
        if left and right:
            return c.join_cost(left, sep + run + sep, right) - c.join_cost(left, sep, right)
        if left:
            return c.join_cost(left, sep, run) + c.text(run)
        if right:
            return c.join_cost(run, sep, right) + c.text(run)
        return c.text(run)

    def _run(self, part: Part) -> str | int:
        if isinstance(part, Text):
            return part.text
        if isinstance(part, Image):
            return self.counter.image(part)
        raise ValueError(f"unsupported {type(part).__name__} part in a user message")

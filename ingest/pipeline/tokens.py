"""Exact Ministral 3 prompt-token counting, mirroring mistral-common 1.13.1 (V13 instruct template).

All counts are in tokens; image sizes are in pixels. Text uses the Tekken BPE shipped with
mistral-common (``data/tekken_240718.json``, the same BPE as Ministral 3). The request template is
``<s>`` + per message ``[SYSTEM_PROMPT]..[/SYSTEM_PROMPT]`` / ``[INST]..[/INST]`` / ``answer</s>``;
consecutive user (or assistant) messages are merged and adjacent text parts are joined with
``"\\n\\n"``; each image is ``rows * (cols + 1)`` tokens; reasoning is ``[THINK]..[/THINK]``.
Not supported (ValueError): tools / tool messages, http(s) image URLs, ``{"type": "image"}`` parts.
Like mistral-common, BPE counts are not additive across concatenation: use :class:`ContentBuilder`
(or :meth:`TokenCounter.join_cost`) to pack incrementally.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CONTEXT_WINDOW = 256_000  # tokens, Mistral API ministral-*-2512
_LEFT_WINDOW = 65_536  # characters of a growing text run looked at when joining a new part
MAX_IMAGE_SIZE = 1540  # pixels, longest side after downscaling
IMAGE_TOKEN_PX = 28  # pixels per image token side (patch 14 x spatial merge 2)
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
    return _ROLE_OVERHEAD["system" if role == "developer" else role]


def image_tokens(width: int, height: int, *, max_size: int = MAX_IMAGE_SIZE) -> int:
    """Tokens for a ``width`` x ``height`` pixel image, exactly as mistral-common's ImageEncoder."""
    w: float = width
    h: float = height
    ratio = max(h / max_size, w / max_size)
    if ratio > 1:  # downscale only; same float ops and banker's rounding as mistral-common
        w, h = max(round(w / ratio), 1), max(round(h / ratio), 1)
    cols = (int(w) - 1) // IMAGE_TOKEN_PX + 1
    rows = (int(h) - 1) // IMAGE_TOKEN_PX + 1
    return rows * (cols + 1)


def image_size(url: str) -> tuple[int, int]:
    """(width, height) in pixels of a ``data:<mime>;base64,`` or ``file://`` image URL.

    Only the header is decoded (progressively larger base64 prefixes); no pixel processing.
    """
    from PIL import Image

    if url.startswith("file://"):
        with Image.open(url.removeprefix("file://")) as im:
            return im.size
    header, sep, payload = url.partition(",")
    if not (url.startswith("data:") and sep and header.endswith(";base64") and payload):
        raise ValueError(f"unsupported image URL (need a base64 data URL): {url[:64]!r}")
    for n in (4096, 65536, len(payload)):
        chunk = payload[: n - n % 4] if n < len(payload) else payload
        try:
            with Image.open(io.BytesIO(base64.b64decode(chunk))) as im:
                return im.size
        except (OSError, SyntaxError, ValueError, binascii.Error) as exc:
            if n >= len(payload):
                raise ValueError(f"not a decodable image: {url[:64]!r}") from exc
    raise AssertionError("unreachable")


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

    def image(self, part: dict[str, Any]) -> int:
        """Tokens of one OpenAI ``image_url`` part (``{"url": ...}`` or a plain URL string)."""
        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str):
            raise ValueError(f"image_url part without a URL: {part!r:.80}")
        return image_tokens(*image_size(url))

    def messages(self, messages: Sequence[dict[str, Any]]) -> int:
        """Prompt tokens of an OpenAI chat request, equal to mistral-common's V13 encoding.

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
            while i < len(messages) and self._role(messages[i]) == role:
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

    @staticmethod
    def _role(message: dict[str, Any]) -> str:
        role = message.get("role")
        return "system" if role == "developer" else str(role)

    def _convert(self, message: dict[str, Any]) -> tuple[str, Any]:
        """(role, content as str / list of str | counting callables) like ``from_openai``."""
        role = self._role(message)
        if role not in _ROLE_OVERHEAD or message.get("tool_calls"):
            raise ValueError(f"unsupported message (tools are not supported): role={role!r}")
        content = message.get("content")
        if isinstance(content, list):
            content = [self._chunk(part, role) for part in content]
        elif content is None and role != "assistant":
            raise ValueError(f"{role} message without content")
        elif content is not None and not isinstance(content, str):
            raise ValueError(f"unsupported content type {type(content).__name__}")
        if role == "assistant":
            r1, r2 = message.get("reasoning_content"), message.get("reasoning")
            if r1 is not None and r2 is not None and r1 != r2:
                raise ValueError("`reasoning_content` and `reasoning` should be equal")
            thinking = r1 if r1 is not None else r2
            if thinking is not None:  # mistral-common prepends a closed ThinkChunk
                think = _think_cost(str(thinking), True)
                content = [think] + (content if isinstance(content, list) else [content or ""])
        return role, content

    def _chunk(self, part: dict[str, Any], role: str) -> Any:
        kind = part.get("type")
        if kind == "text":
            return str(part["text"])
        if kind == "image_url" and role == "user":
            n = self.image(part)
            return lambda _c: n
        if kind == "thinking" and role in ("system", "assistant"):
            return _think_cost(str(part["thinking"]), bool(part.get("closed", True)))
        raise ValueError(f"unsupported content part {kind!r} in a {role} message")


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


def count_messages(messages: Sequence[dict[str, Any]]) -> int:
    """Exact prompt tokens of an OpenAI-style chat request (see :meth:`TokenCounter.messages`)."""
    return get_counter().messages(messages)


class ContentBuilder:
    """Builds one user message part by part while keeping its exact token count.

    ``history`` holds the earlier messages (it must not end with a user message) and ``tail`` the
    fixed parts that come after everything added (e.g. the question). Invariant:
    ``total == count_messages([*history, message()])``, so a packer can test ``cost(part)``
    against its budget before each ``add`` and never overshoot. ``base`` (history incl. BOS) and
    ``tokens`` (this message incl. [INST]/[/INST]) are token counts; images cost image_tokens().

        b = ContentBuilder(history=[system], tail=[{"type": "text", "text": question}])
        for part in candidate_parts:
            if b.total + b.cost(part) <= CONTEXT_WINDOW - max_tokens:
                b.add(part)
        request = [system, b.message()]
    """

    def __init__(
        self,
        history: Sequence[dict[str, Any]] = (),
        tail: Sequence[dict[str, Any]] = (),
        counter: TokenCounter | None = None,
    ) -> None:
        """Parts are OpenAI content parts: ``{"type": "text"|"image_url", ...}``."""
        self.counter = counter or get_counter()
        if history and TokenCounter._role(history[-1]) == "user":
            raise ValueError("history must not end with a user message (it would be merged)")
        self.base = self.counter.messages(history) if history else BOS_TOKENS  # tokens
        self.added: list[dict[str, Any]] = []
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

    def message(self) -> dict[str, Any]:
        """The OpenAI user message: added parts followed by the tail."""
        return {"role": "user", "content": [*self.added, *self.tail]}

    def cost(self, part: dict[str, Any]) -> int:
        """Exact tokens that ``add(part)`` would add (may be 0 for an empty text)."""
        return self._cost(self._run(part))

    def add(self, part: dict[str, Any], cost: int | None = None) -> int:
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

    def _run(self, part: dict[str, Any]) -> str | int:
        if part.get("type") == "text":
            return str(part["text"])
        if part.get("type") == "image_url":
            return self.counter.image(part)
        raise ValueError(f"unsupported content part {part.get('type')!r}")

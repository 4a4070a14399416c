"""Docent's answers in the OpenAI chat-completions format, for clients of /v1.

The other side of this package: here Docent is the server. A request's ``messages`` are
read into a question, earlier turns and screenshots; an answer's events are written as
``chat.completion`` objects or ``chat.completion.chunk`` SSE frames. Citations survive
twice: the text keeps its ``[n]`` markers and ends with a sources footer (for clients
that show only text), and the extension field ``sources`` carries them structured, on
``choices[0].message`` of a whole completion and on the last streamed chunk.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..answers import CollectedAnswer, answer_collect
from ..events import ChatEvent

MODEL_PREFIX = "docent/"
FOOTER = "\n\n---\nSources:\n"  # where the footer starts; stripped from earlier turns
DONE = b"data: [DONE]\n\n"


class CompletionError(Exception):
    """A request refused in OpenAI's error shape: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return error_body(str(self), kind=self.kind, code=self.code, param=self.param)


def error_body(
    message: str, *, kind: str = "invalid_request_error", code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class CompletionRequest:
    kb_slug: str
    question: str
    history: list[tuple[str, str]]  # (role, text), alternating from "user" to "assistant"
    images: list[str]  # data: URLs
    stream: bool
    include_usage: bool
    filters: Any  # Docent's extension: which documents to read (ingest.filters), or None


def completion_request(body: Any) -> CompletionRequest:
    """Read a chat-completions request body; CompletionError for what can't be answered.

    System and developer messages are dropped: Docent's own instructions (answer from
    the sources, cite them) are the only ones the model gets. Tool messages are dropped.
    """
    if not isinstance(body, dict):
        raise CompletionError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIX):
        raise CompletionError(
            "model must be 'docent/<knowledge-base>'; GET /v1/models lists them.",
            status=404,
            code="model_not_found",
            param="model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise CompletionError("messages must be a non-empty list.", param="messages")
    turns = [_message(m, i) for i, m in enumerate(messages)]
    turns = [t for t in turns if t[0] in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise CompletionError("The last message must be the user's question.", param="messages")
    question, images = turns[-1][1], turns[-1][2]
    options = body.get("stream_options") or {}
    return CompletionRequest(
        kb_slug=model.removeprefix(MODEL_PREFIX),
        question=question,
        history=_alternating([(role, text) for role, text, _ in turns[:-1]]),
        images=images,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        filters=body.get("filters"),
    )


def _message(message: Any, index: int) -> tuple[str, str, list[str]]:
    param = f"messages[{index}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise CompletionError("Each message must be an object with a role.", param=param)
    content = message.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
        if message["role"] == "assistant":
            text = text.split(FOOTER, 1)[0]  # our own footer, sent back: not worth tokens
        return message["role"], text, []
    if not isinstance(content, list):
        raise CompletionError("content must be a string or a list of parts.", param=param)
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_image_url(part.get("image_url"), param))
        else:
            raise CompletionError(
                "Only text and image_url content parts are supported.", param=param
            )
    return message["role"], "\n".join(texts), images


def _image_url(value: Any, param: str) -> str:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url.startswith("data:image/"):
        # Fetching a URL the client names would let it make Docent reach any address.
        raise CompletionError(
            "image_url must be a base64 data: URL (data:image/png;base64,...); Docent "
            "does not fetch remote images.",
            param=param,
        )
    return url


def _alternating(turns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Earlier turns as question-and-answer pairs: same-role neighbours joined, an answer
    with no question before it and a question left unanswered dropped."""
    joined: list[tuple[str, str]] = []
    for role, text in turns:
        if joined and joined[-1][0] == role:
            joined[-1] = (role, joined[-1][1] + "\n\n" + text)
        elif joined or role == "user":
            joined.append((role, text))
    if joined and joined[-1][0] == "user":
        joined.pop()
    return joined


def model_list(slugs: Iterable[tuple[str, float]]) -> dict[str, Any]:
    """GET /v1/models: one model per readable knowledge base; `slugs` are (slug, created
    as a Unix time in seconds)."""
    data = [
        {
            "id": MODEL_PREFIX + slug,
            "object": "model",
            "created": int(created),
            "owned_by": "docent",
        }
        for slug, created in slugs
    ]
    return {"object": "list", "data": data}


def _footer(answer: CollectedAnswer) -> str:
    """The cited passages, one line each, by number: what [n] in the text points to."""
    passages = {int(p["number"]): p for p in answer.sources}
    cited = answer.citations.get("cited", ())
    lines = []
    for number in sorted({n for entry in cited for n in entry["numbers"]}):
        passage = passages.get(number)
        if passage is None:
            continue
        where = passage["document"]
        if passage.get("pages"):
            where += ", p. " + ", ".join(str(p) for p in passage["pages"])
        lines.append(f"[{number}] [{where}]({passage['url']})")
    return FOOTER + "\n".join(lines) if lines else ""


def _sources(answer: CollectedAnswer) -> list[dict[str, Any]]:
    """The extension field: one entry per document, the cited ones first."""
    keys = ("document_id", "document", "numbers", "pages", "section", "excerpt", "url", "cited")
    entries = (*answer.citations.get("cited", ()), *answer.citations.get("more", ()))
    return [{key: entry.get(key) for key in keys} for entry in entries]


def _usage(answer: CollectedAnswer) -> dict[str, int]:
    prompt, completion = answer.prompt_tokens or 0, answer.completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish_reason(answer: CollectedAnswer) -> str:
    return "length" if answer.status == "truncated" else "stop"


def _failure(answer: CollectedAnswer) -> CompletionError:
    code = answer.error.get("code")
    if code == "rate_limited":
        retry = round(answer.error.get("retry_after") or 30)
        return CompletionError(
            answer.error["message"],
            status=429,
            kind="rate_limit_error",
            code=code,
            retry_after=max(1, retry),
        )
    status = 503 if code in ("store_unavailable", "database", "unavailable") else 502
    return CompletionError(
        answer.error.get("message", "failed"), status=status, kind="server_error", code=code
    )


def completion_object(events: Iterable[ChatEvent], *, model: str) -> dict[str, Any]:
    """A whole answer as one ``chat.completion``; CompletionError if it failed."""
    answer = answer_collect(events)
    if answer.failed:
        raise _failure(answer)
    message = {
        "role": "assistant",
        "content": answer.answer + _footer(answer),
        "sources": _sources(answer),
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(answer)}],
        "usage": _usage(answer),
    }


def completion_chunks(
    events: Iterable[ChatEvent], *, model: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """An answer's events as ``chat.completion.chunk`` objects, ending with the finishing
    chunk (it carries ``sources``), the usage chunk when asked for, and, for an answer
    that failed, an ``{"error": ...}`` object (the openai SDK raises it as an APIError)."""
    answer = CollectedAnswer()
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**base, "choices": [choice], **extra}

    yield chunk({"role": "assistant", "content": ""})
    for event in events:
        answer.read(event)
        if event.kind == "delta":
            yield chunk({"content": event.data["text"]})
    if answer.failed:
        yield _failure(answer).body()
        return
    footer = _footer(answer)
    if footer:
        yield chunk({"content": footer})
    yield chunk({}, _finish_reason(answer), sources=_sources(answer))
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(answer)}


def chunk_frames(chunks: Sequence[dict[str, Any] | bytes]) -> bytes:
    """Chunks that were ready together as one write of unnamed ``data:`` SSE frames, runs
    of plain text deltas joined into one (a client sees the same text, in fewer frames)."""
    out: list[bytes] = []
    text: list[str] = []
    first: dict[str, Any] | None = None  # the first of a run of text deltas

    def flush() -> None:
        nonlocal first
        if first is not None:
            choice = {**first["choices"][0], "delta": {"content": "".join(text)}}
            out.append(_frame({**first, "choices": [choice]}))
            first = None
            text.clear()

    for chunk in chunks:
        if isinstance(chunk, dict) and _text_only(chunk):
            first = first or chunk
            text.append(str(chunk["choices"][0]["delta"]["content"]))
            continue
        flush()
        out.append(chunk if isinstance(chunk, bytes) else _frame(chunk))
    flush()
    return b"".join(out)


def _frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def _text_only(chunk: dict[str, Any]) -> bool:
    if len(chunk.get("choices") or ()) != 1:
        return False
    choice = chunk["choices"][0]
    return choice["finish_reason"] is None and choice["delta"].keys() == {"content"}


def chunk_stream(chunks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any] | bytes]:
    """The chunks, then OpenAI's ``data: [DONE]``."""
    yield from chunks
    yield DONE

"""The OpenAI shape of the stand-in's answers, models list and errors; the base of every dialect.

Shapes follow the recorded payloads in ``fixtures/`` (tests/standin/test_fixtures.py
compares the two key by key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from .script import ModelInfo

FIXTURES = Path(__file__).with_name("fixtures")
OPEN, CLOSE = "[THINK]", "[/THINK]"
Pieces = list[tuple[str, str]]  # ("r" reasoning | "c" content, text)


class HTTPError(Exception):
    """An error response: status, body, extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(json.dumps(body)[:300])
        self.status, self.body, self.headers = status, body, headers or {}


@cache
def fixture(path: str) -> str:
    return (FIXTURES / path).read_text(encoding="utf-8")


def fixture_json(path: str) -> Any:
    return json.loads(fixture(path))


def fixture_headers(path: str) -> dict[str, str]:
    """Headers of a recorded response worth replaying (rate limits, Retry-After)."""
    if not (FIXTURES / path).exists():
        return {}
    lines = fixture(path).splitlines()[1:]
    pairs = (line.partition(":") for line in lines if ":" in line)
    keep = ("retry-after", "x-ratelimit")
    return {k.strip(): v.strip() for k, _, v in pairs if k.strip().lower().startswith(keep)}


def open_weights_models() -> dict[str, ModelInfo]:
    """Hugging Face ids, as vLLM, Together and llama.cpp users name them."""
    models = {}
    for size in (3, 8, 14):
        for kind in ("Instruct", "Reasoning"):
            models[f"mistralai/Ministral-3-{size}B-{kind}-2512"] = ModelInfo(
                262_144, reasoning=kind == "Reasoning"
            )
    return models


def legacy_models() -> dict[str, ModelInfo]:
    """The generic dialect's list: Mistral API ids and the OpenRouter spellings."""
    models = dict(mistral_models())
    models.update(openrouter_models())
    models.update(open_weights_models())
    return models


@cache
def mistral_models() -> dict[str, ModelInfo]:
    models = {}
    for entry in fixture_json("mistral/models.json")["data"]:
        info = ModelInfo(
            entry["max_context_length"],
            vision=entry["capabilities"]["vision"],
            reasoning=entry["id"].startswith("magistral"),
        )
        for name in [entry["id"], *entry.get("aliases", [])]:
            models[name] = info
    return models


@cache
def openrouter_models() -> dict[str, ModelInfo]:
    return {
        entry["id"]: ModelInfo(
            entry["context_length"],
            vision="image" in entry["architecture"]["input_modalities"],
            reasoning="reasoning" in entry.get("supported_parameters", []),
        )
        for entry in fixture_json("openrouter/models.json")["data"]
    }


def split_markers(pieces: Pieces) -> Pieces:
    """Reasoning as inline [THINK]…[/THINK] content, each marker split across two chunks."""
    out: Pieces = []
    thinking = False
    for kind, text in pieces:
        if kind == "r" and not thinking:
            out += [("c", OPEN[:3]), ("c", OPEN[3:])]
            thinking = True
        if kind == "c" and thinking:
            out += [("c", CLOSE[:4]), ("c", CLOSE[4:] + "\n\n")]
            thinking = False
        out.append(("c", text))
    if thinking:
        out += [("c", CLOSE[:4]), ("c", CLOSE[4:])]
    return out


class Dialect:
    """The OpenAI shape most servers speak; subclasses are the providers' own variants."""

    name = "openai"
    reasoning_style = "reasoning_content"
    processing_comments = 0
    serves_any_model = False  # llama.cpp answers with its one model whatever the request names
    error_types = {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "payment_required",
        403: "forbidden",
        404: "not_found",
        408: "timeout",
        422: "invalid_request_error",
        429: "rate_limited",
        500: "internal_server_error",
        502: "bad_gateway",
        503: "service_unavailable",
        504: "gateway_timeout",
    }

    def default_models(self) -> dict[str, ModelInfo]:
        return legacy_models()

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        data = [
            {
                "id": name,
                "object": "model",
                "created": 1764633600,
                "owned_by": "mistralai",
                "max_context_length": info.context_window,
                "capabilities": {"completion_chat": True, "vision": info.vision},
            }
            for name, info in models.items()
        ]
        return {"object": "list", "data": data}

    def check_body(self, body: dict[str, Any]) -> None:
        """Refuse fields the provider refuses (most accept and ignore unknown ones)."""

    def messages_for_checking(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return messages

    def context_error(self, prompt: int, max_tokens: int, window: int) -> HTTPError | None:
        if prompt + max_tokens <= window:
            return None
        return self.error(
            400,
            f"Prompt contains {prompt} tokens and max_tokens is {max_tokens}, too large for "
            f"model with {window} maximum context length",
        )

    def error(self, status: int, message: Any, *, code: Any = None) -> HTTPError:
        return HTTPError(status, self.error_body(status, message, code=code))

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        return {
            "object": "error",
            "message": message,
            "type": self.error_types.get(status, "api_error"),
            "param": None,
            "code": code if code is not None else str(status),
        }

    def recorded_error(self, status: int) -> tuple[Any, dict[str, str]] | None:
        path = f"{self.name}/error_{status}.json"
        if not (FIXTURES / path).exists():
            return None
        return fixture_json(path), fixture_headers(f"{self.name}/error_{status}.headers")

    # -- answers -----------------------------------------------------------------------------

    def opening_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def delta(self, kind: str, text: str, style: str) -> dict[str, Any]:
        if kind == "c":
            return {"content": text}
        fields = ["reasoning", "reasoning_content"] if style == "both" else [style]
        return dict.fromkeys(fields, text)

    def stream(
        self,
        meta: dict[str, Any],
        pieces: Pieces,
        finish: str,
        usage: dict[str, Any],
        *,
        include_usage: bool,
        style: str,
    ) -> Iterator[bytes]:
        """The SSE frames of one answer; `meta` holds id, created and model."""
        if style == "inline":
            pieces = split_markers(pieces)
        yield self.frame(meta, self.opening_delta())
        for kind, text in pieces:
            yield self.frame(meta, self.delta(kind, text, style))
        yield from self.closing(meta, finish, usage, include_usage)
        yield b"data: [DONE]\n\n"

    def closing(
        self, meta: dict[str, Any], finish: str, usage: dict[str, Any], include_usage: bool
    ) -> Iterator[bytes]:
        yield self.frame(meta, {}, finish, usage=usage)

    def frame(
        self,
        meta: dict[str, Any],
        delta: dict[str, Any] | None,
        finish: str | None = None,
        **extra: Any,
    ) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        chunk = {**meta, "object": "chat.completion.chunk", "choices": choices, **extra}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def message(self, text: str, reasoning: str | None, style: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning is None:
            return message
        if style == "inline":
            message["content"] = f"{OPEN}{reasoning}{CLOSE}{text}"
        else:
            message.update(self.delta("r", reasoning, style))
        return message


def sse_frames(text: str) -> list[bytes]:
    """A recorded .sse fixture as the frames to send (comments and data alike)."""
    return [block.encode() + b"\n\n" for block in re.split(r"\n\n+", text) if block.strip()]

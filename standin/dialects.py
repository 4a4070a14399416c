"""Each provider's formats, as the stand-in speaks them: models list, stream, errors, checks.

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
from .tokenizer import mistral_api_to_common

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


class Mistral(Dialect):
    """Mistral's API: strict request schema, thinking content chunks, usage always sent."""

    name = "mistral"
    reasoning_style = "thinking"
    # ChatCompletionStreamRequest's fields (mistralai/client-python); anything else is 422.
    fields = frozenset(
        [
            "model",
            "messages",
            "temperature",
            "top_p",
            "max_tokens",
            "stream",
            "stop",
            "random_seed",
            "metadata",
            "response_format",
            "tools",
            "tool_choice",
            "presence_penalty",
            "frequency_penalty",
            "n",
            "prediction",
            "parallel_tool_calls",
            "prompt_mode",
            "safe_prompt",
            "reasoning_effort",
        ]
    )
    message_fields = frozenset(["role", "content", "name", "prefix", "tool_calls", "tool_call_id"])

    def default_models(self) -> dict[str, ModelInfo]:
        return dict(mistral_models())

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        recorded = {e["id"]: e for e in fixture_json("mistral/models.json")["data"]}
        data = []
        for name, info in models.items():
            entry = dict(recorded.get(name) or next(iter(recorded.values())))
            entry.update(id=name, name=name, max_context_length=info.context_window)
            entry["capabilities"] = {**entry["capabilities"], "vision": info.vision}
            data.append(entry)
        return {"object": "list", "data": data}

    def check_body(self, body: dict[str, Any]) -> None:
        problems = [
            _forbidden(["body", key], value)
            for key, value in body.items()
            if key not in self.fields
        ]
        for n, message in enumerate(body.get("messages") or []):
            if isinstance(message, dict):
                role = message.get("role")
                problems += [
                    _forbidden(["body", "messages", n, role, key], value)
                    for key, value in message.items()
                    if key not in self.message_fields
                ]
        if problems:
            raise HTTPError(422, self.error_body(422, {"detail": problems}) | {"code": None})

    def messages_for_checking(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return mistral_api_to_common(messages)

    def context_error(self, prompt: int, max_tokens: int, window: int) -> HTTPError | None:
        if prompt + max_tokens <= window:
            return None
        return self.error(
            400,
            f"Prompt contains {prompt} tokens and 0 draft tokens, too large for model with "
            f"{window} maximum context length",
            code="3051",
        )

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        return super().error_body(status, message, code=code) | {"raw_status_code": status}

    def delta(self, kind: str, text: str, style: str) -> dict[str, Any]:
        if style != "thinking":
            return super().delta(kind, text, style)
        if kind == "c":
            return {"content": [{"type": "text", "text": text}]}
        return {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]}

    def closing(
        self, meta: dict[str, Any], finish: str, usage: dict[str, Any], include_usage: bool
    ) -> Iterator[bytes]:
        yield self.frame(meta, {"content": ""}, finish, usage=usage)

    def message(self, text: str, reasoning: str | None, style: str) -> dict[str, Any]:
        if reasoning is None or style != "thinking":
            return super().message(text, reasoning, style)
        thinking = {"type": "thinking", "thinking": [{"type": "text", "text": reasoning}]}
        content = [{**thinking, "closed": True}, {"type": "text", "text": text}]
        return {"role": "assistant", "content": content, "tool_calls": None}


class OpenRouter(Dialect):
    name = "openrouter"
    reasoning_style = "openrouter"
    processing_comments = 2

    def default_models(self) -> dict[str, ModelInfo]:
        return dict(openrouter_models())

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        recorded = {e["id"]: e for e in fixture_json("openrouter/models.json")["data"]}
        data = []
        for name, info in models.items():
            entry = json.loads(json.dumps(recorded.get(name) or next(iter(recorded.values()))))
            entry.update(id=name, canonical_slug=name, context_length=info.context_window)
            entry["top_provider"]["context_length"] = info.context_window
            entry["architecture"]["input_modalities"] = (
                ["text", "image"] if info.vision else ["text"]
            )
            if info.reasoning:
                entry["supported_parameters"] = [*entry["supported_parameters"], "reasoning"]
            data.append(entry)
        return {"data": data}

    def context_error(self, prompt: int, max_tokens: int, window: int) -> HTTPError | None:
        if prompt + max_tokens <= window:
            return None
        return self.error(
            400,
            f"This endpoint's maximum context length is {window} tokens. However, you "
            f"requested about {prompt + max_tokens} tokens ({prompt} of text input, "
            f"{max_tokens} in the output). Please reduce the length of either one, or use the "
            "context-compression plugin to compress your prompt automatically.",
        )

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        return {"error": {"message": message, "code": status, "metadata": {"provider_name": None}}}

    def delta(self, kind: str, text: str, style: str) -> dict[str, Any]:
        if style != "openrouter":
            return super().delta(kind, text, style)
        if kind == "c":
            return {"content": text, "role": "assistant", "reasoning": None}
        detail = {"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}
        return {
            "content": "",
            "role": "assistant",
            "reasoning": text,
            "reasoning_details": [detail],
        }

    def frame(
        self,
        meta: dict[str, Any],
        delta: dict[str, Any] | None,
        finish: str | None = None,
        **extra: Any,
    ) -> bytes:
        chunk = json.loads(super().frame(meta, delta, finish, **extra)[6:])
        chunk["provider"] = "Mistral"
        for choice in chunk["choices"]:
            choice["native_finish_reason"] = finish
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def closing(
        self, meta: dict[str, Any], finish: str, usage: dict[str, Any], include_usage: bool
    ) -> Iterator[bytes]:
        # OpenRouter always ends with a usage chunk, whatever stream_options said.
        empty = {"content": "", "role": "assistant"}
        yield self.frame(meta, {**empty, "reasoning": None}, finish)
        yield self.frame(meta, empty, finish, usage={**usage, "is_byok": False})

    def message(self, text: str, reasoning: str | None, style: str) -> dict[str, Any]:
        message = super().message(text, reasoning, "reasoning" if style == "openrouter" else style)
        if reasoning is not None and style == "openrouter":
            detail = {"type": "reasoning.text", "text": reasoning, "format": "unknown", "index": 0}
            message["reasoning_details"] = [detail]
        return message


class VLLM(Dialect):
    name = "vllm"
    reasoning_style = "reasoning"

    def default_models(self) -> dict[str, ModelInfo]:
        return open_weights_models()

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        (recorded,) = fixture_json("vllm/models.json")["data"]
        return {
            "object": "list",
            "data": [
                {**recorded, "id": name, "root": name, "max_model_len": info.context_window}
                for name, info in models.items()
            ],
        }

    def context_error(self, prompt: int, max_tokens: int, window: int) -> HTTPError | None:
        if prompt + max_tokens <= window:
            return None
        return self.error(
            400,
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{prompt + max_tokens} tokens ({prompt} in the messages, {max_tokens} in the "
            "completion). Please reduce the length of the messages or completion.",
        )

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        kind = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError"}
        return {
            "error": {
                "message": message,
                "type": kind.get(status, "InternalServerError"),
                "param": None,
                "code": status,
            }
        }

    def closing(
        self, meta: dict[str, Any], finish: str, usage: dict[str, Any], include_usage: bool
    ) -> Iterator[bytes]:
        yield self.frame(meta, {"content": ""}, finish)
        if include_usage:  # vLLM sends usage only when asked
            yield self.frame(meta, None, usage=usage, system_fingerprint="vllm-standin")


class LlamaCpp(Dialect):
    name = "llamacpp"
    reasoning_style = "reasoning_content"
    serves_any_model = True

    def default_models(self) -> dict[str, ModelInfo]:
        return {"ministral-3-8b-instruct-2512-q4_k_m.gguf": ModelInfo(8192)}

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        recorded = fixture_json("llamacpp/models.json")
        (entry,) = recorded["data"]
        data = [
            {
                **entry,
                "id": name,
                "aliases": [name],
                # llama.cpp lists "image" when started with a vision projector (--mmproj)
                "architecture": {
                    "input_modalities": ["text", "image"] if info.vision else ["text"],
                    "output_modalities": ["text"],
                },
                "meta": {**entry["meta"], "n_ctx": info.context_window},
            }
            for name, info in models.items()
        ]
        return {"models": recorded["models"], "object": "list", "data": data}

    def context_error(self, prompt: int, max_tokens: int, window: int) -> HTTPError | None:
        if prompt < window:  # llama.cpp refuses only a prompt that does not fit
            return None
        return HTTPError(
            400,
            {
                "error": {
                    "code": 400,
                    "message": f"request ({prompt} tokens) exceeds the available context size "
                    f"({window} tokens), try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": prompt,
                    "n_ctx": window,
                }
            },
        )

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        return {
            "error": {
                "code": status,
                "message": message,
                "type": self.error_types.get(status, "server_error"),
            }
        }

    def opening_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": None}

    def closing(
        self, meta: dict[str, Any], finish: str, usage: dict[str, Any], include_usage: bool
    ) -> Iterator[bytes]:
        timings = {"prompt_n": usage["prompt_tokens"], "predicted_n": usage["completion_tokens"]}
        yield self.frame(meta, {}, finish, timings=timings)
        if include_usage:
            yield self.frame(meta, None, usage=usage, timings=timings)


class Together(Dialect):
    name = "together"
    reasoning_style = "reasoning"

    def default_models(self) -> dict[str, ModelInfo]:
        return open_weights_models()

    def models_body(self, models: dict[str, ModelInfo]) -> Any:
        (entry, *_rest) = fixture_json("together/models.json")
        return [
            {**entry, "id": name, "context_length": info.context_window}
            for name, info in models.items()
        ]

    def error_body(self, status: int, message: Any, *, code: Any = None) -> Any:
        return {
            "error": {
                "message": message,
                "type": self.error_types.get(status, "api_error"),
                "param": None,
                "code": code,
            }
        }

    def delta(self, kind: str, text: str, style: str) -> dict[str, Any]:
        return {"role": "assistant", **super().delta(kind, text, style)}


DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (Dialect(), Mistral(), OpenRouter(), VLLM(), LlamaCpp(), Together())
}


def _forbidden(loc: list[Any], value: Any) -> dict[str, Any]:
    return {
        "type": "extra_forbidden",
        "loc": loc,
        "msg": "Extra inputs are not permitted",
        "input": value,
    }


def sse_frames(text: str) -> list[bytes]:
    """A recorded .sse fixture as the frames to send (comments and data alike)."""
    return [block.encode() + b"\n\n" for block in re.split(r"\n\n+", text) if block.strip()]

"""Each provider's own variant of the OpenAI shape: Mistral, OpenRouter, vLLM, llama.cpp, Together.

Shapes follow the recorded payloads in ``fixtures/`` (tests/assistant/llm/test_client.py
compares the two key by key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .dialects import (
    Dialect,
    HTTPError,
    fixture_json,
    mistral_models,
    open_weights_models,
    openrouter_models,
)
from .script import ModelInfo
from .tokenizer import mistral_api_to_common


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


def _forbidden(loc: list[Any], value: Any) -> dict[str, Any]:
    return {
        "type": "extra_forbidden",
        "loc": loc,
        "msg": "Extra inputs are not permitted",
        "input": value,
    }


DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (Dialect(), Mistral(), OpenRouter(), VLLM(), LlamaCpp(), Together())
}

"""What the stand-in is told to do, and what it saw: configuration, scripted replies, records."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

DIALECTS = ("openai", "mistral", "openrouter", "vllm", "llamacpp", "together")
REASONING_STYLES = (
    "reasoning_content",  # vLLM before 0.11, llama.cpp with a reasoning format
    "reasoning",  # vLLM 0.11+, Together
    "both",
    "thinking",  # Mistral's API: thinking content chunks
    "openrouter",  # reasoning + reasoning_details
    "inline",  # [THINK]...[/THINK] inside content, markers split across chunks
)


@dataclass
class ModelInfo:
    """A served model: context window in tokens, whether it takes images, whether it reasons."""

    context_window: int
    vision: bool = True
    reasoning: bool = False


@dataclass
class ServerConfig:
    """Behaviour knobs; all can be patched at runtime (``POST /_control/config``)."""

    delay_per_token: float = 0.0  # seconds between streamed chunks
    strict_params: bool = True  # reject (422) requests without max_tokens / temperature
    max_images: int = 8
    max_image_bytes: int = 10 * 1024 * 1024  # decoded bytes per image
    api_key: str | None = None  # if set, require "Authorization: Bearer <api_key>" (else 401)
    dialect: str = "openai"  # whose formats to speak: one of DIALECTS
    models: dict[str, ModelInfo] | None = None  # None: the dialect's own list
    unknown_models: bool = False  # serve unknown model ids as 256k vision models

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, patch: dict[str, Any]) -> None:
        for key, value in patch.items():
            if key not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown config key {key!r}")
            if key == "models" and value is not None:
                value = {
                    k: v if isinstance(v, ModelInfo) else ModelInfo(**v) for k, v in value.items()
                }
            if key == "dialect" and value not in DIALECTS:
                raise ValueError(f"dialect must be one of {DIALECTS}, got {value!r}")
            setattr(self, key, value)


FAULTS = ("drop", "malformed", "error_event", "hang")


@dataclass
class Reply:
    """One scripted response (consumed by the next chat request(s)).

    ``status != 200`` answers with that HTTP error *before* validation (like a gateway).
    ``fault`` (stream and JSON): ``drop`` closes the socket after ``after_tokens`` chunks;
    ``malformed`` sends broken JSON; ``error_event`` sends an OpenRouter mid-stream
    ``{"error": {...}}`` event under HTTP 200; ``hang`` waits ``hang_seconds`` (before the
    headers, or after ``after_tokens`` chunks if ``hang_mid_stream``).
    """

    text: str | None = None  # None: the default RAG answer built from the request
    reasoning: str | None = None
    reasoning_field: str | None = None  # one of REASONING_STYLES; None: the dialect's own
    cost: float | None = None  # usage.cost (OpenRouter)
    finish_reason: str | None = None  # default "stop" (or "length" when max_tokens cut it)
    completion_tokens: int | None = None  # override usage.completion_tokens
    status: int = 200
    error_style: str | None = None  # whose error bodies (a dialect); None: the server's
    error_message: str | None = None
    error_code: int = 502  # error_event code
    retry_after: float | None = None  # Retry-After header, seconds
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    after_tokens: int = 3
    hang_seconds: float = 30.0
    hang_mid_stream: bool = False
    processing_comments: int | None = None  # ": OPENROUTER PROCESSING" lines; None: dialect
    delay_per_token: float | None = None
    replay: str | None = None  # a recorded fixture (e.g. "mistral/stream_thinking.sse"), sent as is
    times: int = 1  # how many requests this entry answers

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {self.fault!r}")
        if self.reasoning_field is not None and self.reasoning_field not in REASONING_STYLES:
            raise ValueError(f"bad reasoning_field {self.reasoning_field!r}")
        if self.error_style is not None and self.error_style not in DIALECTS:
            raise ValueError(f"bad error_style {self.error_style!r}")

    @classmethod
    def error(
        cls, status: int, *, retry_after: float | None = None, style: str | None = None, **kw: Any
    ) -> Reply:
        """An HTTP error (429, 500, 502, 503, ...) with the dialect's (or `style`'s) body."""
        return cls(status=status, retry_after=retry_after, error_style=style, **kw)

    @classmethod
    def hang(cls, seconds: float = 30.0, *, mid_stream: bool = False, **kw: Any) -> Reply:
        return cls(fault="hang", hang_seconds=seconds, hang_mid_stream=mid_stream, **kw)

    @classmethod
    def drop(cls, after_tokens: int = 3, **kw: Any) -> Reply:
        return cls(fault="drop", after_tokens=after_tokens, **kw)

    @classmethod
    def malformed(cls, after_tokens: int = 2, **kw: Any) -> Reply:
        return cls(fault="malformed", after_tokens=after_tokens, **kw)

    @classmethod
    def error_event(
        cls,
        code: int = 502,
        message: str = "Provider returned error",
        after_tokens: int = 3,
        **kw: Any,
    ) -> Reply:
        return cls(
            fault="error_event",
            error_code=code,
            error_message=message,
            after_tokens=after_tokens,
            **kw,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Reply:
        """From a control-API object (a bare string is ``{"text": ...}``)."""
        if isinstance(data, str):
            return cls(text=data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown reply fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RecordedRequest:
    """What the server saw and did for one request (control endpoints are not recorded)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any = None  # parsed JSON body (None if absent / not JSON)
    model: str | None = None
    stream: bool = False
    prompt_tokens: int | None = None  # exact mistral-common count (None if not reached)
    n_images: int = 0
    image_bytes: list[int] = field(default_factory=list)  # decoded size of each image
    missing_params: list[str] = field(default_factory=list)  # of max_tokens / temperature
    status: int = 0
    error: str | None = None
    reply: dict[str, Any] | None = None  # the scripted Reply used, if any
    response_text: str = ""  # content actually sent (streamed chunks so far)
    completion_tokens: int = 0
    completed: bool = False  # the full response was written
    client_disconnected: bool = False
    started: float = field(default_factory=time.time)
    finished: float | None = None
    received: float | None = None  # time.time() when the request line arrived (before the body)

    def to_dict(self, bodies: bool = True) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not bodies:
            data["body"] = None
        return data

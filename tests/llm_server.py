"""A stand-in Ministral 3 server for tests: OpenAI chat-completions over real HTTP on loopback.

Every chat request is checked the way Mistral's own stack does it:
``ChatCompletionRequest.from_openai(...)`` then ``MistralTokenizer.encode_chat_completion`` with a
tokenizer configured like Ministral 3 (see :func:`mistral_tokenizer`). ``usage.prompt_tokens`` is
that exact count.

In-process::

    with LLMServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        server.script(Reply(text="Hello [1]"), Reply.error(429, retry_after=1))
        ...
        server.requests[-1].prompt_tokens

As a subprocess: ``python tests/llm_server.py --port 0`` prints the chosen port on the first
stdout line, then serves until SIGTERM/SIGINT. Control API (JSON, not recorded):

- ``GET /_control/health``             -> ``{"ok": true}``
- ``GET /_control/requests[?since=N&bodies=0]`` -> ``{"requests": [RecordedRequest dicts]}``
- ``DELETE /_control/requests``        -> forget recorded requests
- ``POST /_control/script``            -> body: a reply object, a list of them, or
  ``{"replies": [...], "replace": false}``; fields are those of :class:`Reply`
- ``GET /_control/script`` / ``DELETE /_control/script`` -> pending replies / clear them
- ``GET /_control/config`` / ``POST /_control/config`` -> read / patch :class:`ServerConfig`
- ``POST /_control/reset``             -> clear requests and script, restore the start-up config
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import dataclasses
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mistral_common
from mistral_common.exceptions import MistralCommonException
from mistral_common.protocol.instruct.normalize import get_normalizer
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.validator import ValidationMode, get_validator
from mistral_common.tokens.tokenizers.base import SpecialTokens, TokenizerVersion
from mistral_common.tokens.tokenizers.image import ImageConfig
from mistral_common.tokens.tokenizers.instruct import InstructTokenizerV13
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer, load_image_encoder
from mistral_common.tokens.tokenizers.tekken import SpecialTokenInfo, Tekkenizer

# --------------------------------------------------------------------------------------------
# mistral-common configured like Ministral 3 (2512)
# --------------------------------------------------------------------------------------------

TEKKEN_FILE = Path(mistral_common.__file__).parent / "data" / "tekken_240718.json"
#: patch 14 x spatial merge 2 = 28-px image tokens, longest side scaled down to 1540 px.
MINISTRAL3_IMAGE_CONFIG = ImageConfig(
    image_patch_size=14, max_image_size=1540, spatial_merge_size=2
)
#: Special tokens beyond the 20 legacy ones. Their ranks follow the Magistral / Mistral Small 3.x
#: tekken.json layout (inferred; ranks never change a token *count*).
_EXTRA_SPECIAL_TOKENS = {
    32: SpecialTokens.args.value,
    33: SpecialTokens.call_id.value,
    34: SpecialTokens.begin_think.value,
    35: SpecialTokens.end_think.value,
}
_tokenizer_lock = threading.Lock()
_tokenizers: dict[bool, MistralTokenizer] = {}


def ministral3_special_tokens() -> list[SpecialTokenInfo]:
    """Ranks 0-35: legacy (<unk>..[TOOL_CONTENT]), fillers, [ARGS] [CALL_ID] [THINK] [/THINK]."""
    tokens = list(Tekkenizer.DEPRECATED_SPECIAL_TOKENS)
    for rank in range(len(tokens), 36):
        name = _EXTRA_SPECIAL_TOKENS.get(rank, Tekkenizer.SPECIAL_TOKEN_TEMPLATE.format(id=rank))
        tokens.append(SpecialTokenInfo(rank=rank, token_str=name, is_control=True))
    return tokens


def mistral_tokenizer(vision: bool = True) -> MistralTokenizer:
    """A cached MistralTokenizer like Ministral 3: tekken_240718 BPE, V13 template, serving mode.

    Assembled by hand because mistral-common 1.13.1 ships no Ministral 3 tokenizer file: a
    ``Tekkenizer`` (131,072 ids, 1,000 special) with version v13 and the image config above,
    ``InstructTokenizerV13`` + ``ImageEncoder``, the v13 validator (``ValidationMode.serving``)
    and the v13 request normalizer.
    """
    with _tokenizer_lock:
        if vision not in _tokenizers:
            data = json.loads(TEKKEN_FILE.read_text(encoding="utf-8"))
            tekken = Tekkenizer(
                data["vocab"],
                ministral3_special_tokens(),
                pattern=data["config"]["pattern"],
                vocab_size=data["config"]["default_vocab_size"],
                num_special_tokens=data["config"]["default_num_special_tokens"],
                version=TokenizerVersion.v13,
                name="ministral3-tekken",
                image_config=MINISTRAL3_IMAGE_CONFIG if vision else None,
            )
            encoder = load_image_encoder(MINISTRAL3_IMAGE_CONFIG, tekken) if vision else None
            _tokenizers[vision] = MistralTokenizer(
                InstructTokenizerV13(tekken, image_encoder=encoder),
                validator=get_validator(TokenizerVersion.v13, mode=ValidationMode.serving),
                request_normalizer=get_normalizer(TokenizerVersion.v13, None),
            )
        return _tokenizers[vision]


def to_request(
    messages: list[dict[str, Any]], *, model: str = "ministral-8b-2512", **kwargs: Any
) -> ChatCompletionRequest:
    """``ChatCompletionRequest.from_openai`` exactly as the server calls it."""
    return ChatCompletionRequest.from_openai(messages=messages, model=model, **kwargs)


def count_prompt_tokens(messages: list[dict[str, Any]], *, model: str = "ministral-8b-2512") -> int:
    """Reference count: ``len(encode_chat_completion(from_openai(messages)).tokens)``."""
    return len(mistral_tokenizer().encode_chat_completion(to_request(messages, model=model)).tokens)


# --------------------------------------------------------------------------------------------
# configuration, scripted replies, recorded requests
# --------------------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """A served model: context window in tokens and whether it accepts images."""

    context_window: int
    vision: bool = True


def default_models() -> dict[str, ModelInfo]:
    """Mistral API ids (and the OpenRouter ``mistralai/`` spellings)."""
    models: dict[str, ModelInfo] = {}
    for size in ("3b", "8b", "14b"):
        for suffix in ("2512", "latest"):
            models[f"ministral-{size}-{suffix}"] = ModelInfo(256_000)
        models[f"mistralai/ministral-{size}-2512"] = ModelInfo(262_144)
    models["mistralai/ministral-3b-2512"] = ModelInfo(131_072)
    models["ministral-8b-2410"] = ModelInfo(128_000, vision=False)
    models["mistralai/ministral-8b"] = ModelInfo(128_000, vision=False)
    return models


@dataclass
class ServerConfig:
    """Behaviour knobs; all can be patched at runtime (``POST /_control/config``)."""

    delay_per_token: float = 0.0  # seconds between streamed chunks
    strict_params: bool = True  # reject (422) requests without max_tokens / temperature
    max_images: int = 8
    max_image_bytes: int = 10 * 1024 * 1024  # decoded bytes per image
    api_key: str | None = None  # if set, require "Authorization: Bearer <api_key>" (else 401)
    models: dict[str, ModelInfo] = field(default_factory=default_models)
    unknown_models: bool = False  # serve unknown model ids as 256k vision models

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, patch: dict[str, Any]) -> None:
        for key, value in patch.items():
            if key not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown config key {key!r}")
            if key == "models":
                value = {
                    k: v if isinstance(v, ModelInfo) else ModelInfo(**v) for k, v in value.items()
                }
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
    reasoning_field: str = "reasoning_content"  # "reasoning" | "reasoning_content" | "both"
    cost: float | None = None  # usage.cost (OpenRouter)
    finish_reason: str | None = None  # default "stop" (or "length" when max_tokens cut it)
    completion_tokens: int | None = None  # override usage.completion_tokens
    status: int = 200
    error_style: str = "mistral"  # "mistral" | "openrouter" error bodies
    error_message: str | None = None
    error_code: int = 502  # error_event code
    retry_after: float | None = None  # Retry-After header, seconds
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    after_tokens: int = 3
    hang_seconds: float = 30.0
    hang_mid_stream: bool = False
    processing_comments: int = 0  # ": OPENROUTER PROCESSING" lines before the first chunk
    delay_per_token: float | None = None
    times: int = 1  # how many requests this entry answers

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {self.fault!r}")
        if self.reasoning_field not in ("reasoning", "reasoning_content", "both"):
            raise ValueError(f"bad reasoning_field {self.reasoning_field!r}")
        if self.error_style not in ("mistral", "openrouter"):
            raise ValueError(f"bad error_style {self.error_style!r}")

    @classmethod
    def error(
        cls, status: int, *, retry_after: float | None = None, style: str = "mistral", **kw: Any
    ) -> Reply:
        """An HTTP error (429, 500, 502, 503, ...) with a Mistral or OpenRouter body."""
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


# --------------------------------------------------------------------------------------------
# the default, deterministic RAG answer
# --------------------------------------------------------------------------------------------

NO_ANSWER = "I cannot find the answer in the provided sources."
_XML_SOURCE = re.compile(
    r"<(source|document|doc)\b[^>]*?\b(?:id|index|n|number)\s*=\s*[\"']?(\d+)[\"']?[^>]*>(.*?)</\1\s*>",
    re.S | re.I,
)
_NUMBERED = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:(?:source|document)[ \t]*)?\[(\d+)\][:.)]?[ \t]*(.*?)"
    r"(?=^[ \t]*(?:#{1,6}[ \t]*)?(?:(?:source|document)[ \t]*)?\[\d+\]|\Z)",
    re.S | re.M | re.I,
)
_LABELLED = re.compile(
    r"^[ \t]*(?:source|document)[ \t]+(\d+)[ \t]*[:.\-][ \t]*(.*?)"
    r"(?=^[ \t]*(?:source|document)[ \t]+\d+|\Z)",
    re.S | re.M | re.I,
)
_SENTENCE = re.compile(r"[^.!?\n]*?\w[^.!?\n]*[.!?]")


def find_sources(text: str) -> list[tuple[int, str]]:
    """Numbered sources: ``<source id="1">..</source>``, ``[1] ..`` or ``Source 1: ..``."""
    for pattern in (_XML_SOURCE, _NUMBERED, _LABELLED):
        found = [
            (int(m.group(m.re.groups - 1)), m.group(m.re.groups).strip())
            for m in pattern.finditer(text)
        ]
        found = [(n, body) for n, body in found if body]
        if found:
            return sorted(found, key=lambda item: item[0])
    return []


def default_answer(messages: Any) -> str:
    """``"<first sentence of the first source> [n]."``, or :data:`NO_ANSWER` without sources."""
    text = ""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = _text_of(message.get("content"))
                break
    sources = find_sources(text)
    if not sources:
        return NO_ANSWER
    number, body = sources[0]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if len(lines) > 1 and not re.search(r"[.!?]$", lines[0]):
        lines = lines[1:]  # a title / "file.pdf, page 3" line
    body = " ".join(lines)
    match = _SENTENCE.search(body)
    sentence = match.group(0).strip() if match else body[:200].strip()
    stop = sentence[-1] if sentence[-1] in ".!?" else "."
    return f"{sentence.rstrip('.!?')} [{number}]{stop}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class HTTPError(Exception):
    """An error response: status, body, extra headers."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(json.dumps(body)[:300])
        self.status, self.body, self.headers = status, body, headers or {}


def mistral_error(status: int, message: Any, type_: str, code: str | None = None) -> HTTPError:
    """Mistral's error body: ``{"object": "error", "message", "type", "param": null, "code"}``."""
    body = {"object": "error", "message": message, "type": type_, "param": None, "code": code}
    return HTTPError(status, body)


def schema_error(loc: list[Any], msg: str, kind: str = "value_error") -> HTTPError:
    """422 like Mistral's FastAPI validation errors."""
    detail = [{"type": kind, "loc": ["body", *loc], "msg": msg, "input": None}]
    return mistral_error(422, {"detail": detail}, "invalid_request_message_error")


_DEFAULT_ERRORS = {
    400: ("Bad request", "invalid_request_error"),
    401: ("Unauthorized", "authentication_error"),
    402: ("Insufficient credits", "payment_required"),
    403: ("Forbidden", "forbidden"),
    408: ("Request timeout", "timeout"),
    429: ("Requests rate limit exceeded", "rate_limited"),
    500: ("Internal server error", "internal_server_error"),
    502: ("Bad gateway", "bad_gateway"),
    503: ("Service unavailable", "service_unavailable"),
    504: ("Gateway timeout", "gateway_timeout"),
}


def scripted_error(reply: Reply) -> HTTPError:
    message, type_ = _DEFAULT_ERRORS.get(reply.status, ("Error", "api_error"))
    message = reply.error_message or message
    if reply.error_style == "openrouter":
        body: dict[str, Any] = {"error": {"code": reply.status, "message": message, "metadata": {}}}
    else:
        body = mistral_error(reply.status, message, type_, str(reply.status)).body
    headers = dict(reply.headers)
    if reply.retry_after is not None:
        headers["Retry-After"] = f"{reply.retry_after:g}"
    if reply.status == 429:
        headers.setdefault("X-RateLimit-Remaining", "0")
    return HTTPError(reply.status, body, headers)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    owner: LLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Peers vanishing (the tests do that on purpose) is not an error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class LLMServer:
    """The stand-in server. ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        """``config``: any :class:`ServerConfig` field (e.g. ``delay_per_token=0.02``)."""
        self.host, self._port = host, port
        self.config = ServerConfig()
        self.config.update(config)
        self._initial_config = copy.deepcopy(self.config)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LLMServer:
        mistral_tokenizer()  # warm up (~1 s, cached per process)
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging / slow handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``openai.OpenAI(base_url=...)``."""
        return self.url + "/v1"

    # -- inspection / scripting ----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of all recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def script(self, *replies: Reply | dict[str, Any] | str, replace: bool = False) -> None:
        """Queue replies for the next chat requests (FIFO); a str is ``Reply(text=...)``."""
        parsed = [r if isinstance(r, Reply) else Reply.from_json(r) for r in replies]
        with self._lock:
            if replace:
                self._script.clear()
            self._script.extend(parsed)

    @property
    def pending(self) -> list[Reply]:
        with self._lock:
            return list(self._script)

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def reset(self) -> None:
        """Forget requests and script, restore the start-up config."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self.config = copy.deepcopy(self._initial_config)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` chat requests were recorded *and finished*."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [r for r in self.chat_requests if r.finished is not None]
            if len(done) >= n:
                return done
            time.sleep(0.01)
        raise TimeoutError(f"expected {n} finished chat requests, got {len(self.chat_requests)}")

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _next_reply(self, errors_only: bool) -> Reply | None:
        with self._lock:
            if not self._script or (errors_only and self._script[0].status == 200):
                return None
            head = self._script[0]
            head.times -= 1
            if head.times <= 0:
                self._script.popleft()
            return copy.copy(head)

    # -- request handling --------------------------------------------------------------------
    def _validate(self, body: Any, rec: RecordedRequest) -> tuple[ModelInfo, int | None]:
        """Schema + policy + mistral-common checks; fills ``rec``; returns (model, max_tokens)."""
        if not isinstance(body, dict):
            raise schema_error([], "Input should be a valid JSON object", "dict_type")
        rec.stream = body.get("stream") is True
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise schema_error(["model"], "Field required", "missing")
        rec.model = model
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise schema_error(["messages"], "Field required (a non-empty list)", "missing")
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise schema_error(["messages"], "Each message must be an object with a role")
        for key in ("max_tokens", "temperature"):
            if body.get(key) is None:
                rec.missing_params.append(key)
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 0):
            raise schema_error(["max_tokens"], "Input should be a non-negative integer", "int_type")
        if self.config.strict_params and rec.missing_params:
            raise schema_error(
                [rec.missing_params[0]],
                f"Field required: the test server needs {' and '.join(rec.missing_params)} "
                "on every request (strict_params)",
                "missing",
            )
        info = self.config.models.get(model)
        if info is None and self.config.unknown_models:
            info = ModelInfo(256_000)
        if info is None:
            raise mistral_error(400, f"Invalid model: {model}", "invalid_model", "1500")
        self._check_images(messages, info, rec)
        for key, hi in (("temperature", 2.0), ("top_p", 1.0)):  # not mistral-common's <= 1 cap
            value = body.get(key)
            bad_type = not isinstance(value, int | float) or isinstance(value, bool)
            if value is not None and (bad_type or not 0 <= value <= hi):
                raise schema_error([key], f"Input should be a number in [0, {hi:g}]", "float_type")
        try:  # like vLLM's mistral mode: messages + tools only
            request = to_request(messages, model=model, tools=body.get("tools"))
        except (ValueError, TypeError, KeyError, AssertionError, MistralCommonException) as exc:
            raise schema_error(["messages"], f"{type(exc).__name__}: {exc}") from exc
        try:
            tokenized = mistral_tokenizer().encode_chat_completion(request)
        except (ValueError, TypeError, KeyError, AssertionError, MistralCommonException) as exc:
            raise mistral_error(
                400, f"{type(exc).__name__}: {exc}", "invalid_request_error", "3000"
            ) from exc
        rec.prompt_tokens, rec.n_images = len(tokenized.tokens), len(tokenized.images)
        budget = rec.prompt_tokens + (max_tokens or 0)
        if rec.prompt_tokens > info.context_window or budget > info.context_window:
            raise mistral_error(
                400,
                f"Prompt contains {rec.prompt_tokens} tokens and max_tokens is {max_tokens or 0}, "
                f"too large for model with {info.context_window} maximum context length",
                "invalid_request_error",
                "3051",
            )
        return info, max_tokens

    def _check_images(
        self, messages: list[dict[str, Any]], info: ModelInfo, rec: RecordedRequest
    ) -> None:
        urls: list[Any] = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") in ("image_url", "image"):
                        ref = part.get("image_url", part.get("image"))
                        urls.append(ref.get("url") if isinstance(ref, dict) else ref)
        if not urls:
            return
        if not info.vision:
            raise mistral_error(
                400,
                f"Model {rec.model} does not support image input",
                "invalid_request_error",
                "3040",
            )
        if len(urls) > self.config.max_images:
            raise mistral_error(
                400,
                f"Too many images: {len(urls)} > {self.config.max_images}",
                "invalid_request_error",
                "3041",
            )
        for url in urls:
            if not isinstance(url, str) or not url.startswith("data:"):
                raise mistral_error(
                    400, "Only base64 data URLs are served offline", "invalid_request_error", "3042"
                )
            try:
                size = len(base64.b64decode(url.partition(",")[2]))
            except (binascii.Error, ValueError) as exc:
                raise mistral_error(
                    400, f"Invalid image data: {exc}", "invalid_request_error", "3042"
                ) from exc
            rec.image_bytes.append(size)
            if size > self.config.max_image_bytes:
                raise mistral_error(
                    400,
                    f"Image too large: {size} bytes > {self.config.max_image_bytes}",
                    "invalid_request_error",
                    "3043",
                )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def parse_request(self) -> bool:
        self.received = time.time()  # the request line has just been read
        return super().parse_request()

    @property
    def owner(self) -> LLMServer:
        return self.server.owner

    # -- plumbing ------------------------------------------------------------------------------
    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _path(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return parts.path.rstrip("/"), parse_qs(parts.query)

    # -- routing -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self._path()
        owner = self.owner
        if path.startswith("/_control"):
            if path == "/_control/health":
                return self._send_json(200, {"ok": True})
            if path == "/_control/requests":
                since = int(query.get("since", ["0"])[0])
                bodies = query.get("bodies", ["1"])[0] not in ("0", "false")
                reqs = [r.to_dict(bodies) for r in owner.requests[since:]]
                return self._send_json(200, {"requests": reqs})
            if path == "/_control/script":
                return self._send_json(200, {"pending": [r.to_dict() for r in owner.pending]})
            if path == "/_control/config":
                return self._send_json(200, owner.config.to_dict())
            return self._send_json(404, {"error": "unknown control endpoint"})
        rec = RecordedRequest(
            "GET",
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            received=self.received,
        )
        owner._record(rec)
        if path in ("/v1/models", "/models"):
            data = [
                {
                    "id": name,
                    "object": "model",
                    "created": 1764633600,
                    "owned_by": "mistralai",
                    "max_context_length": info.context_window,
                    "capabilities": {
                        "completion_chat": True,
                        "vision": info.vision,
                        "function_calling": True,
                    },
                }
                for name, info in owner.config.models.items()
            ]
            rec.status = 200
            self._send_json(200, {"object": "list", "data": data})
        else:
            rec.status = 404
            self._send_json(404, mistral_error(404, "Not found", "not_found").body)
        rec.completed, rec.finished = True, time.time()

    def do_DELETE(self) -> None:
        path, _ = self._path()
        self._read_body()
        if path == "/_control/requests":
            self.owner.clear_requests()
        elif path == "/_control/script":
            self.owner.clear_script()
        else:
            return self._send_json(404, {"error": "unknown control endpoint"})
        self._send_json(200, {"ok": True})

    def do_POST(self) -> None:
        path, _ = self._path()
        raw = self._read_body()
        if path.startswith("/_control"):
            return self._control_post(path, raw)
        rec = RecordedRequest(
            "POST",
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            received=self.received,
        )
        self.owner._record(rec)
        try:
            try:
                rec.body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise mistral_error(
                    400, f"Invalid JSON body: {exc}", "invalid_request_error", "3000"
                ) from exc
            if path not in ("/v1/chat/completions", "/chat/completions"):
                raise mistral_error(404, "Not found", "not_found")
            self._chat(rec)
        except HTTPError as err:
            rec.status, rec.error = err.status, str(err)
            self._send_json(err.status, err.body, err.headers)
            rec.completed = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            rec.client_disconnected = True
            self.close_connection = True
        except Exception as exc:  # a bug in the stand-in: make it visible to the test
            rec.error = f"server bug: {exc!r}"
            self.close_connection = True
            if rec.status == 0:
                rec.status = 500
                self._send_json(500, mistral_error(500, rec.error, "internal_server_error").body)
        finally:
            rec.finished = time.time()

    def _control_post(self, path: str, raw: bytes) -> None:
        owner = self.owner
        try:
            data = json.loads(raw) if raw else {}
            if path == "/_control/script":
                replace = isinstance(data, dict) and "replies" in data and bool(data.get("replace"))
                if isinstance(data, dict) and "replies" in data:
                    data = data["replies"]
                owner.script(*(data if isinstance(data, list) else [data]), replace=replace)
                return self._send_json(200, {"pending": len(owner.pending)})
            if path == "/_control/config":
                owner.config.update(data)
                return self._send_json(200, owner.config.to_dict())
            if path == "/_control/reset":
                owner.reset()
                return self._send_json(200, {"ok": True})
        except (ValueError, TypeError) as exc:
            return self._send_json(400, {"error": str(exc)})
        self._send_json(404, {"error": "unknown control endpoint"})

    # -- chat completions ----------------------------------------------------------------------
    def _chat(self, rec: RecordedRequest) -> None:
        owner = self.owner
        api_key = owner.config.api_key
        if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
            raise mistral_error(401, "Unauthorized", "authentication_error", "1000")
        error: HTTPError | None = None
        try:
            _info, max_tokens = owner._validate(rec.body, rec)
        except HTTPError as exc:
            error = exc
        reply = owner._next_reply(errors_only=error is not None)
        if reply is not None:
            rec.reply = reply.to_dict()
            if reply.status != 200:
                raise scripted_error(reply)
        if error is not None:
            raise error
        reply = reply or Reply()
        body = rec.body
        hang_first = reply.fault == "hang" and not (reply.hang_mid_stream and rec.stream)
        if hang_first and owner._stopping.wait(reply.hang_seconds):
            self.close_connection = True
            return
        tokenizer = mistral_tokenizer().instruct_tokenizer.tokenizer
        text = reply.text if reply.text is not None else default_answer(body.get("messages"))
        reasoning = reply.reasoning or ""
        n_reasoning = len(tokenizer.encode(reasoning, bos=False, eos=False))
        content_ids = tokenizer.encode(text, bos=False, eos=False)
        finish = reply.finish_reason or "stop"
        if max_tokens is not None and n_reasoning + len(content_ids) > max_tokens:
            keep = max(0, max_tokens - n_reasoning)
            text, finish = tokenizer.decode(content_ids[:keep]), reply.finish_reason or "length"
            content_ids = content_ids[:keep]
        n_completion = reply.completion_tokens
        if n_completion is None:
            n_completion = n_reasoning + len(content_ids)
        rec.completion_tokens = n_completion
        usage: dict[str, Any] = {
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": n_completion,
            "total_tokens": (rec.prompt_tokens or 0) + n_completion,
        }
        if reply.cost is not None:
            usage["cost"] = reply.cost
        meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": rec.model,
        }
        headers = {"X-Request-Id": meta["id"], "X-Generation-Id": meta["id"], **reply.headers}
        if rec.stream:
            self._stream(rec, reply, meta, headers, text, reasoning, finish, usage)
            return
        if reply.fault == "malformed":
            data = b'{"id": "' + meta["id"].encode() + b'", "choices": [{"message": {"content": "'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            rec.status = 200
            return
        if reply.fault == "error_event":
            raise HTTPError(
                reply.error_code,
                {"error": {"code": reply.error_code, "message": reply.error_message or ""}},
            )
        if reply.fault == "drop":
            rec.status = 200
            self._abort()
            return
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reply.reasoning is not None:
            for name in self._reasoning_fields(reply):
                message[name] = reply.reasoning
        response = {
            **meta,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        rec.status, rec.response_text = 200, text
        self._send_json(200, response, headers)
        rec.completed = True

    @staticmethod
    def _reasoning_fields(reply: Reply) -> list[str]:
        return (
            ["reasoning", "reasoning_content"]
            if reply.reasoning_field == "both"
            else [reply.reasoning_field]
        )

    def _abort(self) -> None:
        """Close the TCP connection abruptly (no chunked terminator)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stream(
        self,
        rec: RecordedRequest,
        reply: Reply,
        meta: dict[str, Any],
        headers: dict[str, str],
        text: str,
        reasoning: str,
        finish: str,
        usage: dict[str, Any],
    ) -> None:
        owner = self.owner
        delay = (
            reply.delay_per_token
            if reply.delay_per_token is not None
            else owner.config.delay_per_token
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        rec.status = 200

        def event(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            chunk = {
                **meta,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            self._chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        for _ in range(reply.processing_comments):
            self._chunk(b": OPENROUTER PROCESSING\n\n")
        event({"role": "assistant", "content": ""})
        pieces = [("r", p) for p in re.findall(r"\s*\S+|\s+", reasoning)]
        pieces += [("c", p) for p in re.findall(r"\s*\S+|\s+", text)]
        sent = 0
        for kind, piece in pieces:
            if (
                reply.fault is not None
                and sent == reply.after_tokens
                and self._fault(rec, reply, meta)
            ):
                return
            if delay and owner._stopping.wait(delay):
                return self._abort()
            if kind == "r":
                event(dict.fromkeys(self._reasoning_fields(reply), piece))
            else:
                event({"content": piece})
                rec.response_text += piece
            sent += 1
        if reply.fault is not None and sent < reply.after_tokens and self._fault(rec, reply, meta):
            return
        event({}, finish, usage=usage)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # terminating zero-length chunk
        rec.completed = True

    def _fault(self, rec: RecordedRequest, reply: Reply, meta: dict[str, Any]) -> bool:
        """Fire the in-stream fault; True if the stream is over."""
        if reply.fault == "drop":
            self._abort()
            return True
        if reply.fault == "malformed":
            self._chunk(
                b'data: {"id": "'
                + meta["id"].encode()
                + b'", "choices": [{"delta": {"content": "x\n\n'
            )
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return True
        if reply.fault == "error_event":
            payload = {
                **meta,
                "object": "chat.completion.chunk",
                "provider": "Mistral",
                "error": {
                    "code": reply.error_code,
                    "message": reply.error_message or "Provider returned error",
                },
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            }
            self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self._chunk(b"")
            return True
        mid_hang = reply.fault == "hang" and reply.hang_mid_stream
        if mid_hang and self.owner._stopping.wait(reply.hang_seconds):
            self._abort()
            return True
        return False


# --------------------------------------------------------------------------------------------
# subprocess entry point
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stand-in Ministral 3 OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed on stdout)"
    )
    parser.add_argument("--delay-per-token", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument(
        "--lenient", action="store_true", help="accept requests without max_tokens/temperature"
    )
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--unknown-models", action="store_true", help="serve any model id")
    args = parser.parse_args(argv)
    server = LLMServer(
        args.host,
        args.port,
        delay_per_token=args.delay_per_token,
        strict_params=not args.lenient,
        api_key=args.api_key,
        unknown_models=args.unknown_models,
    ).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(server.port, flush=True)
    print(f"llm_server listening on {server.base_url}", file=sys.stderr, flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

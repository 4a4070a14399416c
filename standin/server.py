"""The stand-in model server: real HTTP on loopback, state, scripting and request checks.

In-process::

    with LLMServer(dialect="mistral") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        server.script(Reply(text="Hello [1]"), Reply.error(429, retry_after=1))
        ...
        server.requests[-1].prompt_tokens

As a subprocess: ``python -m standin --port 0`` prints the chosen port on the first stdout
line. Control API (JSON, not recorded): ``GET /_control/health``, ``GET|DELETE
/_control/requests[?since=N&bodies=0]``, ``GET|POST|DELETE /_control/script`` (a reply
object, a list, or ``{"replies": [...], "replace": false}``), ``GET|POST /_control/config``
and ``POST /_control/reset``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import sys
import threading
import time
from collections import deque
from http.server import ThreadingHTTPServer
from typing import Any

from mistral_common.exceptions import MistralCommonException

from .dialects import Dialect, HTTPError
from .providers import DIALECTS
from .script import ModelInfo, RecordedRequest, Reply, ServerConfig
from .tokenizer import mistral_tokenizer, to_request

_CHECK_ERRORS = (ValueError, TypeError, KeyError, AssertionError, MistralCommonException)


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
        """``config``: any :class:`ServerConfig` field (e.g. ``dialect="vllm"``)."""
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
        from .handler import Handler

        mistral_tokenizer()  # warm up (~1 s, cached per process)
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port), Handler)
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
        """The base URL clients use: ``…/v1``, or ``…/api/v1`` when speaking OpenRouter."""
        return self.url + ("/api/v1" if self.config.dialect == "openrouter" else "/v1")

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.config.dialect]

    @property
    def models(self) -> dict[str, ModelInfo]:
        return (
            self.config.models if self.config.models is not None else self.dialect.default_models()
        )

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

    def record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def next_reply(self, errors_only: bool) -> Reply | None:
        with self._lock:
            if not self._script or (errors_only and self._script[0].status == 200):
                return None
            head = self._script[0]
            head.times -= 1
            if head.times <= 0:
                self._script.popleft()
            return copy.copy(head)

    # -- request checks ----------------------------------------------------------------------
    def validate(self, body: Any, rec: RecordedRequest) -> tuple[ModelInfo, int | None]:
        """Schema + policy + mistral-common checks; fills ``rec``; returns (model, max_tokens)."""
        dialect = self.dialect
        if not isinstance(body, dict):
            raise schema_error(dialect, [], "Input should be a valid JSON object", "dict_type")
        dialect.check_body(body)
        rec.stream = body.get("stream") is True
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise schema_error(dialect, ["model"], "Field required", "missing")
        rec.model = model
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise schema_error(
                dialect, ["messages"], "Field required (a non-empty list)", "missing"
            )
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise schema_error(dialect, ["messages"], "Each message must be an object with a role")
        for key in ("max_tokens", "temperature"):
            if body.get(key) is None:
                rec.missing_params.append(key)
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 0):
            raise schema_error(
                dialect, ["max_tokens"], "Input should be a non-negative integer", "int_type"
            )
        if self.config.strict_params and rec.missing_params:
            raise schema_error(
                dialect,
                [rec.missing_params[0]],
                f"Field required: the test server needs {' and '.join(rec.missing_params)} "
                "on every request (strict_params)",
                "missing",
            )
        info = self.models.get(model)
        if info is None and dialect.serves_any_model and self.models:
            info = next(iter(self.models.values()))
        if info is None and self.config.unknown_models:
            info = ModelInfo(256_000)
        if info is None:
            raise dialect.error(
                404 if dialect.name == "vllm" else 400, f"Invalid model: {model}", code="1500"
            )
        self._check_images(messages, info, rec)
        for key, hi in (("temperature", 2.0), ("top_p", 1.0)):  # not mistral-common's <= 1 cap
            value = body.get(key)
            bad_type = not isinstance(value, int | float) or isinstance(value, bool)
            if value is not None and (bad_type or not 0 <= value <= hi):
                raise schema_error(
                    dialect, [key], f"Input should be a number in [0, {hi:g}]", "float_type"
                )
        try:  # like vLLM's mistral mode: messages + tools only
            request = to_request(
                dialect.messages_for_checking(messages), model=model, tools=body.get("tools")
            )
        except _CHECK_ERRORS as exc:
            raise schema_error(dialect, ["messages"], f"{type(exc).__name__}: {exc}") from exc
        try:
            tokenized = mistral_tokenizer().encode_chat_completion(request)
        except _CHECK_ERRORS as exc:
            raise dialect.error(400, f"{type(exc).__name__}: {exc}", code="3000") from exc
        rec.prompt_tokens, rec.n_images = len(tokenized.tokens), len(tokenized.images)
        error = dialect.context_error(rec.prompt_tokens, max_tokens or 0, info.context_window)
        if error is not None:
            raise error
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
        dialect = self.dialect
        if not info.vision:
            raise dialect.error(400, f"Model {rec.model} does not support image input", code="3040")
        if len(urls) > self.config.max_images:
            raise dialect.error(
                400, f"Too many images: {len(urls)} > {self.config.max_images}", code="3041"
            )
        for url in urls:
            if not isinstance(url, str) or not url.startswith("data:"):
                raise dialect.error(400, "Only base64 data URLs are served offline", code="3042")
            try:
                size = len(base64.b64decode(url.partition(",")[2]))
            except (binascii.Error, ValueError) as exc:
                raise dialect.error(400, f"Invalid image data: {exc}", code="3042") from exc
            rec.image_bytes.append(size)
            if size > self.config.max_image_bytes:
                raise dialect.error(
                    400,
                    f"Image too large: {size} bytes > {self.config.max_image_bytes}",
                    code="3043",
                )


def schema_error(
    dialect: Dialect, loc: list[Any], msg: str, kind: str = "value_error"
) -> HTTPError:
    """422 like FastAPI validation errors, in the dialect's envelope."""
    detail = [{"type": kind, "loc": ["body", *loc], "msg": msg, "input": None}]
    return dialect.error(422, {"detail": detail})


def scripted_error(dialect: Dialect, reply: Reply) -> HTTPError:
    """A scripted HTTP error: the provider's recorded body where there is one."""
    speaker = DIALECTS[reply.error_style] if reply.error_style else dialect
    recorded = None if reply.error_message else speaker.recorded_error(reply.status)
    if recorded is not None:
        body, headers = recorded
    else:
        message = reply.error_message or _DEFAULT_MESSAGES.get(reply.status, "Error")
        body, headers = speaker.error_body(reply.status, message), {}
    # Retry-After only when the script asks for one (the recorded 429 had one).
    headers = {k: v for k, v in headers.items() if k.lower() != "retry-after"}
    headers.update(reply.headers)
    if reply.retry_after is not None:
        headers["Retry-After"] = f"{reply.retry_after:g}"
    return HTTPError(reply.status, body, headers)


_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Insufficient credits",
    403: "Forbidden",
    408: "Request timeout",
    429: "Requests rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

"""LLMClient: one model server through the openai SDK, with Docent's own retry policy.

The SDK's retries are off: Docent retries itself so that it can tell the person what it
is waiting for ("the model is busy, retrying in 20 s") and stop within a total time cap.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import openai

from ministral.prompt import ChatMessage
from ministral.registry import ModelInfo, model_lookup

from .config import LLMConfig, Sampling
from .events import Finished, LLMError, LLMEvent, StreamFailed, Waiting
from .wire import DeltaReader, ServerFacts, dialect_for, request_params, wire_messages

logger = logging.getLogger("docent.llm")
DISCOVERY_SECONDS = 600.0  # how long what GET /models said is trusted
DISCOVERY_RETRY_SECONDS = 60.0  # how soon to ask again when it failed
DISCOVERY_TIMEOUT_SECONDS = 5.0
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
STATUS_EVERY_SECONDS = 5.0  # while waiting to retry, say how long is left this often


@dataclass(frozen=True)
class _Response:
    value: Any


class LLMClient:
    def __init__(
        self,
        config: LLMConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sleep, self._clock = sleep, clock
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            default_headers=dict(config.headers) or None,
        )
        self._lock = threading.Lock()
        self._facts: ServerFacts | None = None
        self._facts_until = 0.0
        self._warned: set[str] = set()
        self.inline_reasoning = False  # the server sent [THINK] inline: it has no parser

    # --- what the model is --------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self.model_info(self.config.model)

    def model_info(self, model: str) -> ModelInfo:
        """Registry facts, corrected by the server's own list, then by LLM_CONTEXT_WINDOW."""
        info = model_lookup(model)
        facts = self.server_facts(model)
        if facts.context_window:
            info = info.with_window(facts.context_window, "server")
        if facts.vision is not None:
            info = replace(info, vision=facts.vision)
        if facts.reasoning is not None and not info.known:
            info = replace(info, reasoning=facts.reasoning)
        if self.config.context_window:
            info = info.with_window(self.config.context_window, "LLM_CONTEXT_WINDOW")
        if info.window_source == "default" and model not in self._warned:
            self._warned.add(model)
            logger.warning(
                "Unknown model %r and the server did not publish its window: assuming %d "
                "tokens%s. Set LLM_CONTEXT_WINDOW to the server's real window.",
                model,
                info.context_window,
                "" if info.vision else ", no image input",
            )
        return info

    def server_facts(self, model: str | None = None) -> ServerFacts:
        """What GET /models says about the configured model (cached; {} when it can't say)."""
        with self._lock:
            if self._facts is not None and self._clock() < self._facts_until:
                return self._facts
            if not self.config.discover:
                return ServerFacts(kind=_kind_of(self.config.provider, ""))
        facts, ok = self._discover(model or self.config.model)
        with self._lock:
            self._facts = facts
            self._facts_until = self._clock() + (
                DISCOVERY_SECONDS if ok else DISCOVERY_RETRY_SECONDS
            )
        return facts

    def learn_window(self, tokens: int) -> None:
        """The server refused a request as too long and named its window: believe it."""
        facts = self.server_facts()
        with self._lock:
            self._facts = replace(facts, context_window=tokens)
            self._facts_until = self._clock() + DISCOVERY_SECONDS

    def _discover(self, model: str) -> tuple[ServerFacts, bool]:
        try:
            data = self._client.get(
                "/models",
                cast_to=object,
                options={"timeout": DISCOVERY_TIMEOUT_SECONDS, "max_retries": 0},
            )
        except (openai.APIError, ValueError) as exc:
            logger.info("The model server did not list its models (%s)", type(exc).__name__)
            return ServerFacts(kind=_kind_of(self.config.provider, "")), False
        entries = data.get("data") if isinstance(data, dict) else data
        entry = _find_model(entries if isinstance(entries, list) else [], model)
        return _facts_of(self.config.provider, entry), True

    # --- asking -------------------------------------------------------------------------------

    def stream(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> Iterator[LLMEvent]:
        """Stream an answer as events. Raises LLMError when the model could not be asked."""
        params = self._params(messages, max_tokens, sampling, model, stream=True)
        response: Any = None
        for step in self._attempts(params):
            if isinstance(step, Waiting):
                yield step
            else:
                response = step.value
        reader = DeltaReader()
        finished = False
        try:
            for chunk in response:
                for event in reader.chunk(chunk):
                    finished = finished or isinstance(event, Finished)
                    yield event
            yield from reader.end()
        except openai.APITimeoutError:
            yield StreamFailed(
                f"The model stopped responding mid-answer (nothing for "
                f"{self.config.timeout_seconds:g} s, LLM_TIMEOUT_SECONDS)."
            )
            return
        except openai.APIConnectionError:
            yield StreamFailed("The connection to the model was lost mid-answer.")
            return
        except openai.APIError as exc:
            yield StreamFailed(str(describe_error(exc, self.config)))
            return
        except ValueError as exc:  # the SDK raises JSONDecodeError on a malformed event
            yield StreamFailed(f"The model sent a malformed response ({exc}).")
            return
        except httpx.HTTPError as exc:  # transport errors surface raw mid-stream
            yield StreamFailed(
                f"The connection to the model was lost mid-answer ({type(exc).__name__})."
            )
            return
        finally:
            response.close()
            self.inline_reasoning = self.inline_reasoning or reader.saw_inline
        if not finished:
            yield StreamFailed("The model's stream ended before the answer was complete.")

    def complete(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> tuple[str, str, str]:
        """One non-streamed answer: (reasoning, answer, finish reason); no waiting retries."""
        params = self._params(messages, max_tokens, sampling, model, stream=False)
        try:
            response = self._client.chat.completions.create(**params)
        except openai.APIError as exc:
            raise describe_error(exc, self.config) from exc
        except ValueError as exc:
            raise LLMError(f"The model sent a malformed response ({exc}).") from exc
        if not response.choices:
            return "", "", "stop"
        choice = response.choices[0]
        reasoning, answer = DeltaReader().message(choice.message)
        return reasoning, answer.strip(), choice.finish_reason or "stop"

    def _params(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
        sampling: Sampling | None,
        model: str | None,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        model = model or self.config.model
        info = self.model_info(model)
        facts = self.server_facts(model)
        dialect = dialect_for(self.config.provider, facts)
        params = request_params(
            provider=self.config.provider,
            server=facts,
            info=info,
            sampling=(sampling or Sampling()).over(self.config.sampling),
            max_tokens=max_tokens or self.config.max_tokens or info.max_output_tokens,
            stream=stream,
        )
        wire = wire_messages(messages, dialect=dialect, inline_reasoning=self.inline_reasoning)
        # Sent as the body's own fields: providers spell some differently (random_seed).
        return {"model": model, "messages": wire, "stream": stream, "extra_body": params}

    def _attempts(self, params: dict[str, Any]) -> Iterator[Waiting | _Response]:
        """Send the request, waiting and retrying on 429/5xx within LLM_RETRY_MAX_SECONDS."""
        deadline = self._clock() + self.config.retry_max_seconds
        attempt = 0
        while True:
            try:
                yield _Response(self._client.chat.completions.create(**params))
                return
            except openai.APIError as exc:
                error = describe_error(exc, self.config)
                wait = _retry_wait(exc, attempt)
                too_long = wait is not None and self._clock() + wait > deadline
                if wait is None or attempt >= self.config.max_retries or too_long:
                    raise error from exc
            attempt += 1
            left = wait
            while left > 0:
                yield Waiting(left, _busy_message(error, left))
                step = min(left, STATUS_EVERY_SECONDS)
                self._sleep(step)
                left -= step


def _busy_message(error: LLMError, seconds: float) -> str:
    what = "is busy" if error.code == "rate_limited" else "did not answer"
    return f"The model {what}; retrying in {max(1, round(seconds))} s."


def _retry_wait(exc: openai.APIError, attempt: int) -> float | None:
    """Seconds to wait before the next attempt, or None when retrying cannot help."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in RETRYABLE_STATUS:
            return None
        said = retry_after_seconds(exc.response.headers)
        if said is not None:
            return said
    elif not isinstance(exc, openai.APIConnectionError):
        return None
    return min(8.0, 0.5 * 2**attempt) * (0.75 + random.random() / 2)  # noqa: S311


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms, in seconds."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


# --- errors --------------------------------------------------------------------------------------

_WINDOW_PATTERNS = (
    re.compile(r"available context size \((\d+) tokens\)"),  # llama.cpp
    re.compile(r"with (\d+) maximum context length"),  # Mistral's API
    re.compile(r"maximum context length is (\d+) tokens"),  # vLLM, OpenAI
)
_CONTEXT_WORDS = ("context", "too long", "too large", "exceeds")


def describe_error(exc: Exception, config: LLMConfig) -> LLMError:
    """A sentence for people, naming the setting to change; never a secret."""
    provider = config.provider_name
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(
            f"The model took too long to respond (LLM_TIMEOUT_SECONDS={config.timeout_seconds:g}).",
            code="timeout",
        )
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(
            f"Could not reach the model server at {config.base_url}.", code="connection"
        )
    if not isinstance(exc, openai.APIStatusError):
        detail = _error_message(getattr(exc, "body", None)) or str(exc)
        return LLMError(f"The model reported an error: {detail}")
    status, detail = exc.status_code, _error_message(exc.body) or exc.message
    if status == 401:
        where = config.key_setting or "LLM_API_KEY (no key is set)"
        return LLMError(f"{provider} rejected the API key in {where} (HTTP 401).", code="auth")
    if status == 429:
        wait = retry_after_seconds(exc.response.headers)
        when = f"; it asks to wait {round(wait)} s" if wait else ""
        return LLMError(
            f"{provider} is rate-limiting requests{when}. Please try again shortly.",
            code="rate_limited",
            retry_after=wait,
        )
    if status == 400 and any(word in detail.lower() for word in _CONTEXT_WORDS):
        window = next((int(m.group(1)) for p in _WINDOW_PATTERNS if (m := p.search(detail))), None)
        return LLMError(
            f"The request did not fit the model's window (HTTP 400: {detail}). "
            "Set LLM_CONTEXT_WINDOW to the server's window.",
            code="context",
            window=window,
        )
    if status == 404:
        return LLMError(
            f"{provider} does not serve the model {config.model!r} (HTTP 404: {detail}). "
            "Check LLM_MODEL or the knowledge base's model.",
            code="refused",
        )
    if status >= 500:
        return LLMError(f"The model server failed (HTTP {status}): {detail}", code="unavailable")
    return LLMError(f"{provider} refused the request (HTTP {status}): {detail}", code="refused")


def _error_message(body: object) -> str:
    """The message of Mistral, OpenRouter, vLLM and llama.cpp error bodies."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message", inner.get("detail"))
            if isinstance(message, dict | list):
                return _validation_text(message)
            return message if isinstance(message, str) else ""
        if isinstance(inner, str):
            return inner
    return ""


def _validation_text(value: dict | list) -> str:
    """FastAPI/pydantic details ({"detail": [{"loc", "msg", "type"}]}) as one line."""
    items = value.get("detail", value) if isinstance(value, dict) else value
    if not isinstance(items, list):
        return str(items)
    lines = []
    for item in items:
        if isinstance(item, dict):
            where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
            lines.append(f"{where}: {item.get('msg', '')}".strip(": "))
    return "; ".join(lines)


# --- discovery -----------------------------------------------------------------------------------


def _find_model(entries: list[Any], model: str) -> dict[str, Any]:
    models = [e for e in entries if isinstance(e, dict)]
    for entry in models:
        if entry.get("id") == model:
            return entry
    lowered = model.lower()
    for entry in models:
        names = [entry.get("id"), *(entry.get("aliases") or [])]
        if any(isinstance(n, str) and n.lower() == lowered for n in names):
            return entry
    # llama.cpp serves one model under its file name, whatever id the request names.
    if len(models) == 1 and models[0].get("owned_by") == "llamacpp":
        return models[0]
    return {}


def _kind_of(provider: str, owned_by: object) -> str:
    if provider in ("mistral", "openrouter", "together"):
        return provider
    return owned_by if owned_by in ("vllm", "llamacpp") else ""  # type: ignore[return-value]


def _facts_of(provider: str, entry: dict[str, Any]) -> ServerFacts:
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    top = entry.get("top_provider") if isinstance(entry.get("top_provider"), dict) else {}
    window = next(
        (
            int(v)
            for v in (
                entry.get("max_context_length"),  # Mistral
                entry.get("max_model_len"),  # vLLM
                meta.get("n_ctx"),  # llama.cpp
                top.get("context_length"),  # OpenRouter, what its provider really takes
                entry.get("context_length"),  # OpenRouter, Together
            )
            if isinstance(v, int) and not isinstance(v, bool) and v > 0
        ),
        None,
    )
    vision: bool | None = None
    capabilities = entry.get("capabilities")
    if isinstance(capabilities, dict) and isinstance(capabilities.get("vision"), bool):
        vision = capabilities["vision"]
    elif isinstance(capabilities, list):
        vision = "multimodal" in capabilities or "vision" in capabilities
    architecture = entry.get("architecture")
    if isinstance(architecture, dict) and isinstance(architecture.get("input_modalities"), list):
        vision = "image" in architecture["input_modalities"]
    supported = entry.get("supported_parameters")
    parameters = frozenset(supported) if isinstance(supported, list) else None
    reasoning = ("reasoning" in parameters) if parameters is not None else None
    return ServerFacts(
        kind=_kind_of(provider, entry.get("owned_by")),
        context_window=window,
        vision=vision,
        reasoning=reasoning,
        supported_parameters=parameters,
    )

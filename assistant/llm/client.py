"""LLMClient: one model server through the openai SDK, with Docent's own retry policy.

The SDK's retries are off: Docent retries itself so that it can tell the person what it
is waiting for ("the model is busy, retrying in 20 s") and stop within a total time cap.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx2
import openai

from ministral.prompt import ChatMessage
from ministral.registry import ModelInfo, model_lookup

from .config import LLMConfig, Sampling
from .discovery import facts_of, find_model, kind_of
from .errors import describe_error, retry_after_seconds
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


class LLMClient(Protocol):
    """What the question path asks of a chat model."""

    config: LLMConfig

    @property
    def info(self) -> ModelInfo: ...

    def model_info(self, model: str) -> ModelInfo: ...

    def learn_window(self, tokens: int) -> None: ...

    def stream(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> Generator[LLMEvent, None, None]: ...

    def complete(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> tuple[str, str, str]: ...

    def close(self) -> None: ...


class OpenAIClient:
    """An LLMClient for any OpenAI-compatible chat-completions server, in its dialect."""

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
            timeout=httpx2.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            default_headers=dict(config.headers) or None,
        )
        self._lock = threading.Lock()
        self._facts: ServerFacts | None = None
        self._facts_until = 0.0
        self._warned: set[str] = set()
        self.inline_reasoning = False  # the server sent [THINK] inline: it has no parser

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def warm(self) -> None:
        """Do now what the first answer would wait for: the model's window comes from the
        server's GET /models."""
        self.info  # noqa: B018

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
                return ServerFacts(kind=kind_of(self.config.provider, ""))
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
            return ServerFacts(kind=kind_of(self.config.provider, "")), False
        entries = data.get("data") if isinstance(data, dict) else data
        entry = find_model(entries if isinstance(entries, list) else [], model)
        return facts_of(self.config.provider, entry), True

    # --- asking -------------------------------------------------------------------------------

    def stream(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> Generator[LLMEvent, None, None]:
        """Stream an answer as events. Raises LLMError when the model could not be asked."""
        body = self._body(messages, max_tokens, sampling, model, stream=True)
        response: Any = None
        for step in self._attempts(body):
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
        except httpx2.HTTPError as exc:  # the SDK's transport errors can surface raw mid-stream
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
        body = self._body(messages, max_tokens, sampling, model, stream=False)
        try:
            response = self._post(body)
        except openai.APIError as exc:
            raise describe_error(exc, self.config) from exc
        except ValueError as exc:
            raise LLMError(f"The model sent a malformed response ({exc}).") from exc
        choices = response.get("choices") if isinstance(response, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return "", "", "stop"
        choice = choices[0]
        reasoning, answer = DeltaReader().message(choice.get("message"))
        return reasoning, answer.strip(), str(choice.get("finish_reason") or "stop")

    def _body(
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
        # The body as the provider spells it (random_seed, stream_options), sent as is.
        return {"model": model, "messages": wire, "stream": stream, **params}

    def _post(self, body: dict[str, Any]) -> Any:
        """POST /chat/completions; the reply (or each streamed chunk) as parsed JSON.

        The SDK still owns the transport, its errors and SSE decoding; only its typed
        response models are skipped (see DeltaReader).
        """
        return self._client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            stream=bool(body["stream"]),
            stream_cls=openai.Stream[object],
        )

    def _attempts(self, body: dict[str, Any]) -> Iterator[Waiting | _Response]:
        """Send the request, waiting and retrying on 429/5xx within LLM_RETRY_MAX_SECONDS."""
        deadline = self._clock() + self.config.retry_max_seconds
        attempt = 0
        while True:
            try:
                yield _Response(self._post(body))
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
    return min(8.0, 0.5 * 2.0**attempt) * (0.75 + random.random() / 2)  # noqa: S311

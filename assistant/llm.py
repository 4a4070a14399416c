"""The only module that speaks the OpenAI chat-completions wire format (via the openai SDK).

Also holds the registry of the Ministral family: context window, vision, reasoning
and default temperature per model, whatever id the provider spells it with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

logger = logging.getLogger("docent.llm")


# --- Model registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    id: str  # the id as configured, sent to the provider unchanged
    family: str  # canonical name, e.g. "ministral-8b-2512"
    context_window: int  # tokens
    vision: bool
    reasoning: bool = False
    default_temperature: float = 0.1
    default_max_tokens: int = 2048  # tokens of output
    known: bool = True


_FAMILY = {
    "ministral-3b-2512": (256_000, True),
    "ministral-8b-2512": (256_000, True),
    "ministral-14b-2512": (256_000, True),
    "mistral-large-2512": (256_000, True),
    "ministral-8b-2410": (128_000, False),
    "ministral-3b-2410": (128_000, False),
}
_ALIASES = {
    "ministral-3b-latest": "ministral-3b-2512",
    "ministral-8b-latest": "ministral-8b-2512",
    "ministral-14b-latest": "ministral-14b-2512",
    "mistral-large-latest": "mistral-large-2512",
}
# Hugging Face / vLLM / Together style: mistralai/Ministral-3-8B-Instruct-2512 (or -Reasoning-)
_HF_STYLE = re.compile(r"^ministral-3-(\d+)b-(instruct|reasoning|base)-(\d{4})(?:-.*)?$")
UNKNOWN_CONTEXT_WINDOW = 32_768  # tokens: safe for any modern chat model


def model_info(model_id: str) -> ModelInfo:
    """What Docent knows about a model id from any provider; unknown ids get safe defaults."""
    name = model_id.strip().lower().rsplit("/", 1)[-1]
    name = name.removesuffix(":free").replace("_", "-")
    name = _ALIASES.get(name, name)
    reasoning = False
    match = _HF_STYLE.match(name)
    if match:
        size, variant, date = match.groups()
        name, reasoning = f"ministral-{size}b-{date}", variant == "reasoning"
    if name in _FAMILY:
        window, vision = _FAMILY[name]
        return ModelInfo(
            id=model_id,
            family=name,
            context_window=window,
            vision=vision,
            reasoning=reasoning,
            default_temperature=0.7 if reasoning else 0.1,
            default_max_tokens=8192 if reasoning else 2048,
        )
    logger.warning(
        "Unknown model %r: assuming a %d-token window, no image input, temperature 0.1",
        model_id,
        UNKNOWN_CONTEXT_WINDOW,
    )
    return ModelInfo(
        id=model_id,
        family="unknown",
        context_window=UNKNOWN_CONTEXT_WINDOW,
        vision=False,
        known=False,
    )


# --- Configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str = field(repr=False)
    model: str
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_retries: int = 3
    temperature: float | None = None  # None: the model's default
    max_tokens: int | None = None

    @property
    def provider(self) -> str:
        host = urlparse(self.base_url).hostname or ""
        if host.endswith("mistral.ai"):
            return "mistral"
        if host.endswith("openrouter.ai"):
            return "openrouter"
        return "openai-compatible"  # vLLM, llama.cpp, Ollama, the test server


def resolve_config(
    *,
    base_url: str,
    api_key: str,
    model: str,
    mistral_api_key: str = "",
    openrouter_api_key: str = "",
    **options,
) -> LLMConfig | None:
    """Apply the provider shortcuts; None when no model is configured (retrieval-only mode)."""
    if mistral_api_key and not base_url:
        base_url, api_key = "https://api.mistral.ai/v1", api_key or mistral_api_key
        model = model or "ministral-8b-2512"
    elif openrouter_api_key and not base_url:
        base_url, api_key = "https://openrouter.ai/api/v1", api_key or openrouter_api_key
        model = model or "mistralai/ministral-8b-2512"
    if not base_url:
        return None
    return LLMConfig(
        base_url=base_url.rstrip("/"),
        api_key=api_key or "not-needed",
        model=model or "ministral-8b-2512",
        **options,
    )


# --- Streaming events -------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None  # in the provider's currency (USD), only when it says


@dataclass(frozen=True)
class Finished:
    reason: str


@dataclass(frozen=True)
class StreamFailed:
    """The answer broke off; what was already streamed stays valid."""

    message: str


LLMEvent = TextDelta | ReasoningDelta | Usage | Finished | StreamFailed


class LLMError(Exception):
    """The model could not be asked at all (after retries); message is for the user."""


class LLMClient:
    def __init__(self, config: LLMConfig) -> None:
        import httpx
        import openai

        self.config = config
        self.info = model_info(config.model)
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=config.max_retries,  # 408/409/429/5xx, honouring Retry-After
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
        )

    def _params(self, *, temperature: float | None, max_tokens: int | None) -> dict:
        params: dict = {
            "model": self.config.model,
            "temperature": temperature
            if temperature is not None
            else (
                self.config.temperature
                if self.config.temperature is not None
                else self.info.default_temperature
            ),
            "max_tokens": max_tokens or self.config.max_tokens or self.info.default_max_tokens,
        }
        if self.info.reasoning:
            params["top_p"] = 0.95
        return params

    def stream(
        self,
        *,
        messages: list[dict],
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[LLMEvent]:
        """Stream an answer as events. Raises LLMError only before the first event."""
        params = self._params(temperature=temperature, max_tokens=max_tokens)
        extra = {}
        if self.config.provider == "openai-compatible":
            extra["stream_options"] = {"include_usage": True}  # vLLM only sends usage if asked
        try:
            response = self._client.chat.completions.create(
                messages=messages, stream=True, **params, **extra
            )
        except self._openai.APIError as exc:
            raise LLMError(describe_error(exc)) from exc
        finished = False
        try:
            for chunk in response:
                usage = getattr(chunk, "usage", None)
                if usage is not None and usage.prompt_tokens is not None:
                    cost = (usage.model_extra or {}).get("cost")
                    yield Usage(usage.prompt_tokens, usage.completion_tokens or 0, _float(cost))
                for choice in chunk.choices or []:
                    delta = choice.delta
                    extra_fields = (delta.model_extra or {}) if delta is not None else {}
                    reasoning = extra_fields.get("reasoning_content") or extra_fields.get(
                        "reasoning"
                    )
                    if reasoning:
                        yield ReasoningDelta(str(reasoning))
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    if choice.finish_reason:
                        finished = True
                        yield Finished(choice.finish_reason)
        except self._openai.APITimeoutError:
            yield StreamFailed("The model stopped responding mid-answer (timeout).")
            return
        except self._openai.APIConnectionError:
            yield StreamFailed("The connection to the model was lost mid-answer.")
            return
        except self._openai.APIError as exc:
            yield StreamFailed(describe_error(exc))
            return
        except ValueError as exc:  # the SDK raises JSONDecodeError on a malformed event
            yield StreamFailed(f"The model sent a malformed response ({exc}).")
            return
        except Exception as exc:  # httpx transport errors surface raw mid-stream
            yield StreamFailed(
                f"The connection to the model was lost mid-answer ({type(exc).__name__})."
            )
            return
        finally:
            response.close()
        if not finished:
            yield StreamFailed("The model's stream ended before the answer was complete.")

    def complete(
        self,
        *,
        messages: list[dict],
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """One short non-streamed answer (used to rewrite follow-up questions)."""
        params = self._params(temperature=temperature, max_tokens=max_tokens)
        try:
            response = self._client.chat.completions.create(messages=messages, **params)
        except self._openai.APIError as exc:
            raise LLMError(describe_error(exc)) from exc
        except ValueError as exc:
            raise LLMError(f"The model sent a malformed response ({exc}).") from exc
        return (response.choices[0].message.content or "").strip() if response.choices else ""


def describe_error(exc: Exception) -> str:
    """A user-facing sentence for an SDK error, without secrets."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "The model took too long to respond (timeout)."
    if isinstance(exc, openai.APIConnectionError):
        return "Could not reach the model server (connection failed or was dropped)."
    if isinstance(exc, openai.RateLimitError):
        return "The model provider is rate-limiting requests; please try again shortly."
    if isinstance(exc, openai.AuthenticationError):
        return "The model provider rejected the API key (LLM_API_KEY)."
    if isinstance(exc, openai.APIStatusError):
        detail = _error_message(exc.body) or exc.message
        if exc.status_code >= 500:
            return f"The model server failed (HTTP {exc.status_code}): {detail}"
        return f"The model server refused the request (HTTP {exc.status_code}): {detail}"
    detail = _error_message(getattr(exc, "body", None)) or str(exc)
    return f"The model reported an error mid-answer: {detail}"


def _error_message(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            return message if isinstance(message, str) else ""
        if isinstance(body.get("message"), str):
            return body["message"]
    return ""


def _float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None

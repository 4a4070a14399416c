"""Provider errors as sentences for people, naming the setting to change; never a secret."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

import httpx2
import openai

from .config import LLMConfig
from .events import LLMError


def retry_after_seconds(headers: httpx2.Headers) -> float | None:
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


def _validation_text(value: dict[str, Any] | list[Any]) -> str:
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

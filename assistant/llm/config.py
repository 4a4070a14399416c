"""Which model server Docent talks to, with which key, and how it samples.

Resolved once from settings (and a knowledge base's own overrides) into one frozen
`LLMConfig`. Every provider key is accounted for: it is used, or a warning says why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

PROVIDERS = ("mistral", "openrouter", "together", "openai-compatible")
PROVIDER_NAMES = {
    "mistral": "Mistral API",
    "openrouter": "OpenRouter",
    "together": "Together AI",
    "openai-compatible": "an OpenAI-compatible server",
}
DEFAULT_MODELS = {
    "mistral": "ministral-8b-2512",
    "openrouter": "mistralai/ministral-8b-2512",
    "together": "mistralai/Ministral-3-8B-Instruct-2512",
    "openai-compatible": "ministral-8b-2512",
}
# provider -> (setting holding its key, setting holding its base URL)
_SHORTCUTS = {
    "mistral": ("MISTRAL_API_KEY", "MISTRAL_BASE_URL"),
    "openrouter": ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    "together": ("TOGETHER_API_KEY", "TOGETHER_BASE_URL"),
}
_HOSTS = {"mistral.ai": "mistral", "openrouter.ai": "openrouter", "together.xyz": "together"}
_HOSTS["together.ai"] = "together"


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; None (or empty) means not sent, so the model's default applies."""

    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def over(self, base: Sampling) -> Sampling:
        """These values where set, `base`'s elsewhere."""
        return Sampling(
            **{
                name: value if value not in (None, ()) else getattr(base, name)
                for name, value in self.__dict__.items()
            }
        )


@dataclass(frozen=True)
class LLMConfig:
    provider: str  # one of PROVIDERS
    base_url: str
    api_key: str = field(repr=False)
    key_setting: str  # the setting the key came from, named when a provider rejects it
    model: str
    context_window: int | None = None  # tokens; LLM_CONTEXT_WINDOW, overrides everything
    max_tokens: int | None = None  # tokens of output; None: the model's default
    sampling: Sampling = Sampling()
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_retries: int = 3
    retry_max_seconds: float = 30.0  # total time spent waiting to retry one request
    headers: tuple[tuple[str, str], ...] = ()  # extra HTTP headers (OpenRouter attribution)
    discover: bool = True  # read the window and capabilities from GET /models
    rewrite_model: str = ""  # an instruct model for the follow-up rewrite, if set

    @property
    def provider_name(self) -> str:
        return PROVIDER_NAMES[self.provider]


@dataclass(frozen=True)
class Resolved:
    config: LLMConfig | None
    warnings: tuple[str, ...] = ()


def resolve_config(values: Mapping[str, Any], *, model: str = "") -> Resolved:
    """The model configuration from settings-like `values`; config None means retrieval-only.

    `values` holds the LLM_* and provider settings by name. `model` (a knowledge base's
    own model) overrides LLM_MODEL.
    """
    warnings: list[str] = []
    base_url = str(values.get("LLM_BASE_URL") or "").rstrip("/")
    api_key, key_setting = str(values.get("LLM_API_KEY") or ""), "LLM_API_KEY"
    explicit = str(values.get("LLM_PROVIDER") or "auto")
    keys = {p: str(values.get(k) or "") for p, (k, _) in _SHORTCUTS.items()}
    if base_url:
        provider = explicit if explicit != "auto" else _provider_of(base_url)
        if not api_key and keys.get(provider):
            api_key, key_setting = keys[provider], _SHORTCUTS[provider][0]
        for other, key in keys.items():
            if key and key_setting != _SHORTCUTS[other][0]:
                warnings.append(
                    f"{_SHORTCUTS[other][0]} is set but not used: LLM_BASE_URL={base_url} "
                    "takes precedence. Unset LLM_BASE_URL to use that provider."
                )
    else:
        chosen = [p for p, key in keys.items() if key]
        if explicit in _SHORTCUTS and keys.get(explicit):
            chosen = [explicit]
        if not chosen:
            return Resolved(None, tuple(warnings))
        provider = chosen[0]
        key_name, url_name = _SHORTCUTS[provider]
        base_url = str(values.get(url_name) or "").rstrip("/")
        api_key, key_setting = keys[provider], key_name
        for other in chosen[1:]:
            warnings.append(
                f"{_SHORTCUTS[other][0]} is set but not used: {key_name} is used instead "
                f"(set LLM_PROVIDER={other} to choose {PROVIDER_NAMES[other]})."
            )
    if not api_key:
        key_setting = ""
    headers: list[tuple[str, str]] = []
    if provider == "openrouter":
        if referer := str(values.get("OPENROUTER_HTTP_REFERER") or ""):
            headers.append(("HTTP-Referer", referer))
        if title := str(values.get("OPENROUTER_X_TITLE") or ""):
            headers.append(("X-Title", title))
    sampling = Sampling(
        temperature=values.get("LLM_TEMPERATURE"),
        top_p=values.get("LLM_TOP_P"),
        stop=tuple(values.get("LLM_STOP") or ()),
        seed=values.get("LLM_SEED"),
        frequency_penalty=values.get("LLM_FREQUENCY_PENALTY"),
        presence_penalty=values.get("LLM_PRESENCE_PENALTY"),
    )
    config = LLMConfig(
        provider=provider,
        base_url=base_url,
        api_key=api_key or "not-needed",
        key_setting=key_setting,
        model=model or str(values.get("LLM_MODEL") or "") or DEFAULT_MODELS[provider],
        context_window=values.get("LLM_CONTEXT_WINDOW"),
        max_tokens=values.get("LLM_MAX_TOKENS"),
        sampling=sampling,
        timeout_seconds=float(values.get("LLM_TIMEOUT_SECONDS") or 60.0),
        max_retries=int(values.get("LLM_MAX_RETRIES", 3)),
        retry_max_seconds=float(values.get("LLM_RETRY_MAX_SECONDS", 30.0)),
        headers=tuple(headers),
        discover=bool(values.get("LLM_DISCOVER", True)),
        rewrite_model=str(values.get("LLM_REWRITE_MODEL") or ""),
    )
    return Resolved(config, tuple(warnings))


def _provider_of(base_url: str) -> str:
    host = (urlparse(base_url).hostname or "").lower()
    for suffix, provider in _HOSTS.items():
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "openai-compatible"  # vLLM, llama.cpp, Ollama, LiteLLM, the stand-in

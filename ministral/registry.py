"""The seed models, by every id their providers use: window, vision, reasoning, sampling.

Windows are in tokens and are what each provider accepts for prompt + output together.
Where a server publishes its models (``GET /v1/models``), what it says wins over this
table (see `assistant.llm`); the setting ``LLM_CONTEXT_WINDOW`` wins over both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

logger = logging.getLogger("docent.llm")

UNKNOWN_CONTEXT_WINDOW = 32_768  # tokens: safe for any modern chat model
OLLAMA_CONTEXT_WINDOW = 8_192  # tokens: Ollama serves a small num_ctx unless told otherwise


@dataclass(frozen=True)
class Variant:
    """Facts shared by every id of one model."""

    name: str  # what people call it, e.g. "Ministral 3 8B Instruct 2512"
    context_window: int  # tokens
    vision: bool
    reasoning: bool = False
    # Model cards: "Use a temperature below 0.1 for daily-driver and production environments"
    temperature: float = 0.05
    top_p: float | None = None  # None: not sent unless configured
    max_output_tokens: int = 2048  # tokens, default answer budget


@dataclass(frozen=True)
class ModelInfo:
    id: str  # as configured, sent to the provider unchanged
    name: str
    context_window: int  # tokens, prompt + output
    vision: bool
    reasoning: bool
    temperature: float
    top_p: float | None
    max_output_tokens: int  # tokens
    known: bool = True
    window_source: str = "registry"  # registry | server | LLM_CONTEXT_WINDOW | default

    def with_window(self, tokens: int, source: str) -> ModelInfo:
        return replace(self, context_window=tokens, window_source=source)


def _instruct(name: str, window: int, *, vision: bool = True) -> Variant:
    return Variant(name, window, vision)


def _reasoning(name: str, window: int, *, vision: bool = True) -> Variant:
    # Model cards: temperature 0.7, top_p 0.95, and room for a long trace before the answer.
    return Variant(name, window, vision, True, 0.7, 0.95, 8192)


# Windows as the servers publish them (Mistral's own GET /v1/models: the "256k" models take
# 262,144 tokens, Ministral 3 3B 131,072; OpenRouter lists the same figures; vLLM's default
# --max-model-len is 262,144).
_REGISTRY: dict[str, Variant] = {}
for _size, _window in (("3b", 131_072), ("8b", 262_144), ("14b", 262_144)):
    _name = f"Ministral 3 {_size.upper()} Instruct 2512"
    for _alias in (f"ministral-{_size}-2512", f"ministral-{_size}-latest"):
        _REGISTRY[_alias] = _instruct(_name, _window)
    _REGISTRY[f"mistralai/ministral-{_size}-2512"] = _instruct(_name, _window)
for _alias in ("mistral-large-2512", "mistral-large-latest", "mistralai/mistral-large-2512"):
    _REGISTRY[_alias] = _instruct("Mistral Large 3 2512", 262_144)
_REGISTRY["mistralai/mistral-large-3-675b-instruct-2512"] = _instruct(
    "Mistral Large 3 2512", 262_144
)
# Ministral 8B 2410: text only, 128K (131,072 tokens).
for _alias in (
    "ministral-8b-2410",
    "mistral/ministral-8b",
    "mistralai/ministral-8b",
    "mistralai/ministral-8b-2410",
    "mistralai/ministral-8b-instruct-2410",
):
    _REGISTRY[_alias] = _instruct("Ministral 8B 2410", 131_072, vision=False)
for _alias in ("ministral-3b-2410", "mistralai/ministral-3b"):
    _REGISTRY[_alias] = _instruct("Ministral 3B 2410", 131_072, vision=False)
# Magistral: Mistral's reasoning models on its API (1.2 = 2509 reads images).
for _tier in ("small", "medium"):
    for _date, _vision in (("2509", True), ("latest", True), ("2507", False), ("2506", False)):
        _REGISTRY[f"magistral-{_tier}-{_date}"] = _reasoning(
            f"Magistral {_tier.title()} {_date}", 131_072, vision=_vision
        )

# Hugging Face, vLLM, Together and GGUF names: mistralai/Ministral-3-8B-Instruct-2512,
# ministral-3-8b-reasoning-2512-q4_k_m(.gguf), unsloth/Ministral-3-14B-Instruct-2512-GGUF ...
_OPEN_WEIGHTS = re.compile(r"ministral-3-(3|8|14)b-(instruct|reasoning)-2512")
_OLLAMA = re.compile(r"^ministral-3:(3|8|14)b\b")

# Provider ids, as the README lists them (provider -> ids).
PROVIDER_IDS: dict[str, tuple[str, ...]] = {
    "Mistral API": (
        "ministral-8b-2512",
        "ministral-3b-2512",
        "ministral-14b-2512",
        "mistral-large-2512",
        "ministral-8b-2410",
        "magistral-small-2509",
        "magistral-medium-2509",
    ),
    "OpenRouter": (
        "mistralai/ministral-8b-2512",
        "mistralai/ministral-3b-2512",
        "mistralai/ministral-14b-2512",
        "mistralai/mistral-large-2512",
        "mistralai/ministral-8b",
        "mistral/ministral-8b",
    ),
    "Hugging Face, vLLM, Together": tuple(
        f"mistralai/Ministral-3-{size}B-{kind}-2512"
        for size in (3, 8, 14)
        for kind in ("Instruct", "Reasoning")
    ),
    "GGUF (llama.cpp)": (
        "ministral-3-8b-instruct-2512-q4_k_m",
        "ministral-3-8b-reasoning-2512-q4_k_m",
    ),
}


def model_lookup(model_id: str) -> ModelInfo:
    """What Docent knows about a model id from any provider; unknown ids get safe defaults."""
    key = model_id.strip().lower().removesuffix(":free").removesuffix(".gguf")
    variant = _REGISTRY.get(key)
    window_source = "registry"
    if variant is None and (match := _OPEN_WEIGHTS.search(key.replace("_", "-"))):
        size, kind = match.groups()
        make = _reasoning if kind == "reasoning" else _instruct
        variant = make(f"Ministral 3 {size}B {kind.title()} 2512", 262_144)
    if variant is None and (match := _OLLAMA.match(key)):
        variant = _instruct(f"Ministral 3 {match.group(1)}B Instruct 2512", OLLAMA_CONTEXT_WINDOW)
        window_source = "default"
    if variant is None:
        return ModelInfo(
            id=model_id,
            name=model_id,
            context_window=UNKNOWN_CONTEXT_WINDOW,
            vision=False,
            reasoning=False,
            temperature=0.05,
            top_p=None,
            max_output_tokens=2048,
            known=False,
            window_source="default",
        )
    return ModelInfo(
        id=model_id,
        name=variant.name,
        context_window=variant.context_window,
        vision=variant.vision,
        reasoning=variant.reasoning,
        temperature=variant.temperature,
        top_p=variant.top_p,
        max_output_tokens=variant.max_output_tokens,
        window_source=window_source,
    )

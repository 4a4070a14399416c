"""What a server's own model list (GET /models) says: window, vision, reasoning, parameters.

Mistral's `max_context_length` and `capabilities`, vLLM's `max_model_len`, llama.cpp's
`meta.n_ctx`, OpenRouter's `context_length`, `architecture` and `supported_parameters`.
"""

from __future__ import annotations

from typing import Any

from .wire import ServerFacts


def find_model(entries: list[Any], model: str) -> dict[str, Any]:
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


def kind_of(provider: str, owned_by: object) -> str:
    if provider in ("mistral", "openrouter", "together"):
        return provider
    return owned_by if isinstance(owned_by, str) and owned_by in ("vllm", "llamacpp") else ""


def facts_of(provider: str, entry: dict[str, Any]) -> ServerFacts:
    meta: dict[str, Any] = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
    top: dict[str, Any] = (
        entry["top_provider"] if isinstance(entry.get("top_provider"), dict) else {}
    )
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
        kind=kind_of(provider, entry.get("owned_by")),
        context_window=window,
        vision=vision,
        reasoning=reasoning,
        supported_parameters=parameters,
    )

"""The model registry: every seed model by every provider id, agreeing with the providers."""

from __future__ import annotations

import json

import pytest

from ministral.registry import PROVIDER_IDS, model_lookup
from standin import FIXTURES

EXPECTED = {
    # id: (window in tokens, vision, reasoning)
    "ministral-8b-2512": (262_144, True, False),
    "ministral-3b-2512": (131_072, True, False),
    "ministral-14b-2512": (262_144, True, False),
    "mistral-large-2512": (262_144, True, False),
    "ministral-8b-2410": (131_072, False, False),
    "magistral-small-2509": (131_072, True, True),
    "magistral-medium-2509": (131_072, True, True),
    "mistralai/ministral-8b-2512": (262_144, True, False),
    "mistralai/ministral-3b-2512": (131_072, True, False),
    "mistralai/ministral-14b-2512": (262_144, True, False),
    "mistralai/mistral-large-2512": (262_144, True, False),
    "mistralai/ministral-8b": (131_072, False, False),
    "mistral/ministral-8b": (131_072, False, False),
    "mistralai/Ministral-3-3B-Reasoning-2512": (262_144, True, True),
    "mistralai/Ministral-3-8B-Instruct-2512": (262_144, True, False),
    "mistralai/Ministral-3-14B-Reasoning-2512": (262_144, True, True),
    "ministral-3-8b-instruct-2512-q4_k_m": (262_144, True, False),
    "Ministral-3-8B-Reasoning-2512-Q4_K_M.gguf": (262_144, True, True),
    "unsloth/Ministral-3-14B-Instruct-2512-GGUF": (262_144, True, False),
}


@pytest.mark.parametrize("model_id", sorted(EXPECTED))
def test_seed_model_ids(model_id):
    info = model_lookup(model_id)
    assert info.known
    assert (info.context_window, info.vision, info.reasoning) == EXPECTED[model_id]
    assert info.id == model_id  # sent to the provider as configured


def test_every_id_the_readme_lists_is_known():
    for ids in PROVIDER_IDS.values():
        for model_id in ids:
            assert model_lookup(model_id).known, model_id


def test_reasoning_models_sample_as_their_cards_say():
    info = model_lookup("mistralai/Ministral-3-8B-Reasoning-2512")
    assert (info.temperature, info.top_p) == (0.7, 0.95)
    instruct = model_lookup("ministral-8b-2512")
    assert instruct.temperature < 0.1 and instruct.top_p is None  # "below 0.1"


@pytest.mark.parametrize("provider", ["mistral", "openrouter"])
def test_registry_agrees_with_the_providers_own_model_lists(provider):
    """Windows and vision exactly as the provider's recorded GET /models says."""
    body = json.loads((FIXTURES / provider / "models.json").read_text())
    for entry in body["data"]:
        info = model_lookup(entry["id"])
        assert info.known, entry["id"]
        if provider == "mistral":
            window, vision = entry["max_context_length"], entry["capabilities"]["vision"]
        else:
            window = entry["context_length"]
            vision = "image" in entry["architecture"]["input_modalities"]
        assert (info.context_window, info.vision) == (window, vision), entry["id"]


def test_unknown_ids_get_safe_defaults():
    info = model_lookup("some-other-model")
    assert not info.known
    assert info.context_window == 32_768 and not info.vision and info.window_source == "default"
    ollama = model_lookup("ministral-3:8b")
    assert ollama.vision and ollama.context_window == 8_192 and ollama.window_source == "default"

"""Which server, key and model Docent uses: every provider key is used or explained."""

from __future__ import annotations

import pytest

from assistant.llm import resolve_config

BASE = {
    "MISTRAL_BASE_URL": "https://api.mistral.ai/v1",
    "OPENROUTER_BASE_URL": "https://openrouter.ai/api/v1",
    "TOGETHER_BASE_URL": "https://api.together.xyz/v1",
    "LLM_PROVIDER": "auto",
}


def resolve(**values):
    return resolve_config({**BASE, **values})


def test_nothing_set_is_retrieval_only():
    assert resolve().config is None


@pytest.mark.parametrize(
    ("key", "provider", "url", "model"),
    [
        ("MISTRAL_API_KEY", "mistral", "https://api.mistral.ai/v1", "ministral-8b-2512"),
        (
            "OPENROUTER_API_KEY",
            "openrouter",
            "https://openrouter.ai/api/v1",
            "mistralai/ministral-8b-2512",
        ),
        (
            "TOGETHER_API_KEY",
            "together",
            "https://api.together.xyz/v1",
            "mistralai/Ministral-3-8B-Instruct-2512",
        ),
    ],
)
def test_a_provider_key_alone_picks_that_provider(key, provider, url, model):
    resolved = resolve(**{key: "secret"})
    config = resolved.config
    assert (config.provider, config.base_url, config.model) == (provider, url, model)
    assert (config.api_key, config.key_setting) == ("secret", key)
    assert not resolved.warnings


def test_base_urls_are_settings():
    config = resolve(MISTRAL_API_KEY="k", MISTRAL_BASE_URL="http://127.0.0.1:9/v1/").config
    assert (config.provider, config.base_url) == ("mistral", "http://127.0.0.1:9/v1")


def test_a_provider_key_is_never_silently_dropped():
    resolved = resolve(LLM_BASE_URL="http://127.0.0.1:8080/v1", MISTRAL_API_KEY="m")
    assert resolved.config.provider == "openai-compatible"
    assert resolved.config.api_key == "not-needed"  # the Mistral key never goes elsewhere
    assert resolved.config.key_setting == ""
    (warning,) = resolved.warnings
    assert "MISTRAL_API_KEY is set but not used" in warning and "LLM_BASE_URL" in warning


def test_a_provider_url_in_llm_base_url_takes_that_providers_key():
    resolved = resolve(LLM_BASE_URL="https://api.mistral.ai/v1", MISTRAL_API_KEY="m")
    assert resolved.config.provider == "mistral"
    assert (resolved.config.api_key, resolved.config.key_setting) == ("m", "MISTRAL_API_KEY")
    assert not resolved.warnings


def test_two_provider_keys_say_which_one_is_used():
    resolved = resolve(MISTRAL_API_KEY="m", OPENROUTER_API_KEY="o")
    assert resolved.config.provider == "mistral"
    assert "OPENROUTER_API_KEY is set but not used" in resolved.warnings[0]
    chosen = resolve(MISTRAL_API_KEY="m", OPENROUTER_API_KEY="o", LLM_PROVIDER="openrouter")
    assert (
        chosen.config.provider == "openrouter" and chosen.config.key_setting == "OPENROUTER_API_KEY"
    )


def test_openrouter_attribution_headers_only_go_to_openrouter():
    config = resolve(
        OPENROUTER_API_KEY="o",
        OPENROUTER_HTTP_REFERER="https://help.example.com",
        OPENROUTER_X_TITLE="Docent",
    ).config
    assert dict(config.headers) == {"HTTP-Referer": "https://help.example.com", "X-Title": "Docent"}
    mistral = resolve(MISTRAL_API_KEY="m", OPENROUTER_HTTP_REFERER="https://x").config
    assert mistral.headers == ()


def test_sampling_settings_and_a_knowledge_bases_model():
    config = resolve_config(
        {**BASE, "MISTRAL_API_KEY": "m", "LLM_TOP_P": 0.9, "LLM_STOP": ["END"], "LLM_SEED": 7},
        model="mistral-large-2512",
    ).config
    assert config.model == "mistral-large-2512"
    assert (config.sampling.top_p, config.sampling.stop, config.sampling.seed) == (0.9, ("END",), 7)

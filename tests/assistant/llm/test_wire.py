"""Each provider's spelling of a request, as pure functions (no server)."""

from __future__ import annotations

from assistant.llm import Sampling
from assistant.llm.wire import ServerFacts, dialect_for, request_params, wire_messages
from ministral.prompt import ChatMessage, Text, Thinking
from ministral.registry import model_lookup

INSTRUCT = model_lookup("ministral-8b-2512")
REASONING = model_lookup("mistralai/Ministral-3-8B-Reasoning-2512")


def params(provider: str, sampling: Sampling = Sampling(), **facts) -> dict:
    return request_params(
        provider=provider,
        server=ServerFacts(**facts),
        info=INSTRUCT,
        sampling=sampling,
        max_tokens=512,
        stream=True,
    )


def test_unset_sampling_sends_only_the_model_cards_defaults():
    assert params("mistral") == {"temperature": 0.05, "max_tokens": 512}
    reasoning = request_params(
        provider="openai-compatible",
        server=ServerFacts(kind="vllm"),
        info=REASONING,
        sampling=Sampling(),
        max_tokens=512,
        stream=True,
    )
    assert (reasoning["temperature"], reasoning["top_p"]) == (0.7, 0.95)


def test_mistral_gets_its_own_seed_name_and_no_stream_options():
    sent = params("mistral", Sampling(seed=7, stop=("END",), top_p=0.9))
    assert sent["random_seed"] == 7 and "seed" not in sent and "stream_options" not in sent
    assert sent["stop"] == ["END"] and sent["top_p"] == 0.9


def test_self_hosted_servers_are_asked_for_usage():
    assert params("openai-compatible")["stream_options"] == {"include_usage": True}
    assert "stream_options" not in params("openrouter")


def test_parameters_a_provider_does_not_list_are_left_out():
    sent = params(
        "openrouter",
        Sampling(seed=7, presence_penalty=0.5),
        supported_parameters=frozenset({"seed"}),
    )
    assert sent["seed"] == 7 and "presence_penalty" not in sent


def test_dialects():
    assert dialect_for("mistral", ServerFacts()) == "mistral"
    assert dialect_for("openai-compatible", ServerFacts(kind="vllm")) == "mistral-common"
    assert dialect_for("openai-compatible", ServerFacts(kind="llamacpp")) == "generic"


TURN = ChatMessage.text("assistant", "It is empty [1].", reasoning="Source 1 says so.")


def test_reasoning_goes_back_in_each_servers_form():
    assert wire_messages([TURN], dialect="mistral")[0]["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Source 1 says so."}]},
        {"type": "text", "text": "It is empty [1]."},
    ]
    assert wire_messages([TURN], dialect="openrouter")[0]["reasoning"] == "Source 1 says so."
    both = wire_messages([TURN], dialect="mistral-common")[0]
    assert both["reasoning_content"] == both["reasoning"] == "Source 1 says so."
    assert wire_messages([TURN], dialect="generic", inline_reasoning=True)[0]["content"] == (
        "[THINK]Source 1 says so.[/THINK]It is empty [1]."
    )


def test_a_system_thinking_part_is_inline_where_a_server_cannot_take_chunks():
    system = ChatMessage("system", (Text("A"), Thinking("B"), Text("C"), Text("D")))
    assert wire_messages([system], dialect="generic")[0]["content"] == "A[THINK]B[/THINK]C\n\nD"
    chunks = wire_messages([system], dialect="mistral-common")[0]["content"]
    assert chunks[1] == {"type": "thinking", "thinking": "B", "closed": True}

"""Every seed model, through every provider id, on first contact: one question with a
screenshot, then a follow-up, against a stand-in that speaks that provider's formats.

Each case checks what a person and the provider would notice: the model id sent, the
window the budget used, pixels or OCR text, parameters the provider accepts, the visible
answer, and the reasoning kept out of it yet back in context on the next turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from assistant.askers import Asker
from assistant.models import Message
from assistant.screenshots import AttachedBytes
from assistant.services import answer_stream
from assistant.tools import llm_clients_forget
from ministral.reasoning import reasoning_system_parts
from standin import Reply
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

MANUAL = (
    "# Printer manual\n\nError E-42 means the paper tray is empty. Refill the tray and press OK.\n"
)
ANSWER = "E-42 means the paper tray is empty [1]."
FOLLOW_UP = "Refill the tray, then press OK [1]."
TRACE = "Source 1 explains E-42 directly."


@dataclass(frozen=True)
class Seed:
    label: str
    dialect: str  # what the stand-in speaks
    settings: dict  # how an admin configures it
    model: str  # the id that must reach the provider
    window: int  # tokens the budget is packed into
    vision: bool
    reasoning: bool = False
    style: str | None = None  # how the server streams reasoning (None: the dialect's own)


def mistral(model: str = "") -> dict:
    return {"MISTRAL_API_KEY": "mk", "LLM_MODEL": model}


def openrouter(model: str = "") -> dict:
    return {"OPENROUTER_API_KEY": "ok", "LLM_MODEL": model}


def together(model: str = "") -> dict:
    return {"TOGETHER_API_KEY": "tk", "LLM_MODEL": model}


def self_hosted(model: str) -> dict:
    return {"LLM_BASE_URL": "{base}", "LLM_MODEL": model}


SEEDS = [
    Seed(
        "Ministral 3 8B on OpenRouter",
        "openrouter",
        openrouter(),
        "mistralai/ministral-8b-2512",
        262_144,
        True,
    ),
    Seed(
        "Ministral 3 3B on OpenRouter",
        "openrouter",
        openrouter("mistralai/ministral-3b-2512"),
        "mistralai/ministral-3b-2512",
        131_072,
        True,
    ),
    Seed(
        "Ministral 3 14B on OpenRouter",
        "openrouter",
        openrouter("mistralai/ministral-14b-2512"),
        "mistralai/ministral-14b-2512",
        262_144,
        True,
    ),
    Seed(
        "Mistral Large 3 on OpenRouter",
        "openrouter",
        openrouter("mistralai/mistral-large-2512"),
        "mistralai/mistral-large-2512",
        262_144,
        True,
    ),
    Seed(
        "Ministral 8B 2410 on OpenRouter",
        "openrouter",
        openrouter("mistralai/ministral-8b"),
        "mistralai/ministral-8b",
        131_072,
        False,
    ),
    Seed(
        "Ministral 8B 2410 on OpenRouter (old id)",
        "openrouter",
        openrouter("mistral/ministral-8b"),
        "mistral/ministral-8b",
        131_072,
        False,
    ),
    Seed(
        "Ministral 8B 2410 on Mistral's API",
        "mistral",
        mistral("ministral-8b-2410"),
        "ministral-8b-2410",
        131_072,
        False,
    ),
    Seed(
        "Ministral 3 8B on Mistral's API", "mistral", mistral(), "ministral-8b-2512", 262_144, True
    ),
    Seed(
        "Ministral 3 3B on Mistral's API",
        "mistral",
        mistral("ministral-3b-2512"),
        "ministral-3b-2512",
        131_072,
        True,
    ),
    Seed(
        "Ministral 3 14B on Mistral's API",
        "mistral",
        mistral("ministral-14b-2512"),
        "ministral-14b-2512",
        262_144,
        True,
    ),
    Seed(
        "Mistral Large 3 on Mistral's API",
        "mistral",
        mistral("mistral-large-2512"),
        "mistral-large-2512",
        262_144,
        True,
    ),
    Seed(
        "Magistral Small on Mistral's API",
        "mistral",
        mistral("magistral-small-2509"),
        "magistral-small-2509",
        131_072,
        True,
        reasoning=True,
    ),
    Seed(
        "Ministral 3 8B Instruct on Together",
        "together",
        together(),
        "mistralai/Ministral-3-8B-Instruct-2512",
        262_144,
        True,
    ),
    Seed(
        "Ministral 3 8B Instruct on vLLM",
        "vllm",
        self_hosted("mistralai/Ministral-3-8B-Instruct-2512"),
        "mistralai/Ministral-3-8B-Instruct-2512",
        262_144,
        True,
    ),
    Seed(
        "Ministral 3 3B Reasoning on vLLM",
        "vllm",
        self_hosted("mistralai/Ministral-3-3B-Reasoning-2512"),
        "mistralai/Ministral-3-3B-Reasoning-2512",
        262_144,
        True,
        reasoning=True,
    ),
    Seed(
        "Ministral 3 14B Reasoning on vLLM (reasoning_content)",
        "vllm",
        self_hosted("mistralai/Ministral-3-14B-Reasoning-2512"),
        "mistralai/Ministral-3-14B-Reasoning-2512",
        262_144,
        True,
        reasoning=True,
        style="reasoning_content",
    ),
    Seed(
        "Ministral 3 8B Reasoning GGUF on llama.cpp, no reasoning parser",
        "llamacpp",
        self_hosted("ministral-3-8b-reasoning-2512-q4_k_m"),
        "ministral-3-8b-reasoning-2512-q4_k_m",
        8_192,
        True,
        reasoning=True,
        style="inline",
    ),
]


@pytest.fixture
def provider(llm_server, settings):
    """Point Docent at the stand-in the way an admin would configure `seed`."""

    def configure(seed: Seed) -> None:
        llm_clients_forget()
        llm_server.config.update({"dialect": seed.dialect})
        if seed.dialect == "llamacpp":
            llm_server.config.update(
                {"models": {"ministral-3-8b-reasoning-2512-q4_k_m.gguf": {"context_window": 8192}}}
            )
        settings.LLM_BASE_URL = ""
        settings.LLM_API_KEY = ""
        base = llm_server.base_url
        settings.MISTRAL_BASE_URL = settings.OPENROUTER_BASE_URL = settings.TOGETHER_BASE_URL = base
        for name, value in seed.settings.items():
            setattr(settings, name, value.format(base=base) if isinstance(value, str) else value)

    yield configure
    llm_clients_forget()


def ask(kb, question, **kwargs):
    events = list(answer_stream(kb=kb, asker=Asker.for_cli(), question=question, **kwargs))
    assert events[-1].kind == "done", events
    return events, Message.objects.get(pk=events[-1].data["message_id"])


def user_text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


@pytest.mark.parametrize("seed", SEEDS, ids=[s.label for s in SEEDS])
def test_seed_model_first_contact(seed, kb, ingest_text, llm_server, provider):
    provider(seed)
    ingest_text(kb, "printer.md", MANUAL)
    trace = TRACE if seed.reasoning else None
    llm_server.script(Reply(text=ANSWER, reasoning=trace, reasoning_field=seed.style))
    shot = factories.text_image(["PRINTER STATUS", "Error E-42"])
    events, reply = ask(kb, "What does this error mean?", images=[AttachedBytes(shot)])

    assert not [e for e in events if e.kind == "error"], events
    (request,) = llm_server.chat_requests
    body = request.body
    assert request.status == 200, request.error  # nothing the provider refuses
    assert body["model"] == seed.model
    sources = next(e for e in events if e.kind == "sources").data
    assert sources["context_window"] == seed.window
    assert request.prompt_tokens + body["max_tokens"] <= seed.window
    question = user_text(body["messages"][-1])
    if seed.vision:
        assert request.n_images == 1
    else:  # a text-only model reads the screenshot's OCR text instead
        assert request.n_images == 0 and "E-42" in question
    if seed.reasoning:
        assert (body["temperature"], body["top_p"]) == (0.7, 0.95)
        system = body["messages"][0]["content"]
        card = reasoning_system_parts()[0].text
        assert card in (system if isinstance(system, str) else system[0]["text"])
    else:
        assert body["temperature"] < 0.1 and "top_p" not in body
    if seed.dialect == "mistral":
        assert "stream_options" not in body and "seed" not in body

    visible = "".join(e.data["text"] for e in events if e.kind == "delta")
    assert visible == reply.content == ANSWER
    assert "[THINK]" not in visible and TRACE not in visible
    assert reply.status == "complete"
    if seed.reasoning:
        assert reply.reasoning == TRACE
        assert "".join(e.data["text"] for e in events if e.kind == "reasoning") == TRACE

    # The follow-up: the rewrite sees no trace; the answer request carries it back.
    llm_server.script(
        Reply(
            text="How do I clear printer error E-42?",
            reasoning="Rewrite it." if seed.reasoning else None,
            reasoning_field=seed.style,
        ),
        Reply(text=FOLLOW_UP, reasoning=trace, reasoning_field=seed.style),
    )
    events, second = ask(kb, "How do I fix it?", conversation_uid=str(reply.conversation.uid))
    assert not [e for e in events if e.kind == "error"], events
    rewrite, answer = llm_server.chat_requests[1:]
    assert TRACE not in str(rewrite.body["messages"])
    assert second.retrieval_query.startswith("How do I clear printer error E-42?")
    assert "[THINK]" not in second.retrieval_query and "Rewrite it" not in second.retrieval_query
    assert second.content == FOLLOW_UP
    earlier = answer.body["messages"][-2]
    assert earlier["role"] == "assistant"
    if seed.reasoning:
        assert TRACE in str(earlier), "the trace goes back in context, as the model card asks"
    assert answer.status == 200, answer.error

"""LLMClient against each provider's real formats (the stand-in replays them), no Django.

Run alone: python -m pytest tests/assistant/llm -q -p no:django
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from PIL import Image as PILImage

from assistant.llm import (
    Finished,
    LLMConfig,
    LLMError,
    OpenAIClient,
    ReasoningDelta,
    Sampling,
    StreamFailed,
    TextDelta,
    Usage,
    Waiting,
)
from ministral.prompt import ChatMessage, Image, Text, Thinking
from ministral.reasoning import reasoning_system_parts
from ministral.tokens import count_messages
from standin import FIXTURES, LLMServer, ModelInfo, Reply
from standin.dialects import sse_frames
from standin.providers import DIALECTS

PROVIDER = {  # stand-in dialect -> how Docent names the provider
    "mistral": "mistral",
    "openrouter": "openrouter",
    "together": "together",
    "vllm": "openai-compatible",
    "llamacpp": "openai-compatible",
    "openai": "openai-compatible",
}
MODEL = {
    "mistral": "ministral-8b-2512",
    "openrouter": "mistralai/ministral-8b-2512",
    "together": "mistralai/Ministral-3-8B-Instruct-2512",
    "vllm": "mistralai/Ministral-3-8B-Reasoning-2512",
    "llamacpp": "ministral-3-8b-instruct-2512-q4_k_m.gguf",
    "openai": "ministral-8b-2512",
}


_OPEN: list[Any] = []  # clients a test made, closed when it ends


def keep(client: Any) -> Any:
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture(scope="module")
def server():
    with LLMServer(api_key="sk-test") as running:
        yield running


@pytest.fixture
def speak(server):
    """Make the stand-in speak `dialect`; returns a client configured for it."""

    def use(dialect: str, **config: Any) -> OpenAIClient:
        server.reset()
        server.config.update({"dialect": dialect, **config})
        return client_for(server, dialect)

    return use


def client_for(server: LLMServer, dialect: str, **changes: Any) -> OpenAIClient:
    values: dict[str, Any] = {
        "provider": PROVIDER[dialect],
        "base_url": server.base_url,
        "api_key": "sk-test",
        "key_setting": "LLM_API_KEY",
        "model": MODEL[dialect],
        "timeout_seconds": 10,
    }
    return keep(OpenAIClient(LLMConfig(**{**values, **changes})))


def question(text: str = "What does E-42 mean?") -> list[ChatMessage]:
    sources = '<source id="1" document="printer.md">E-42 means the paper tray is empty.</source>'
    return [
        ChatMessage.text("system", "Answer from the sources."),
        ChatMessage("user", (Text(sources), Text(f"Question: {text}"))),
    ]


def collect(events) -> dict[str, Any]:
    out: dict[str, Any] = {"reasoning": "", "text": "", "other": []}
    for event in events:
        if isinstance(event, TextDelta):
            out["text"] += event.text
        elif isinstance(event, ReasoningDelta):
            out["reasoning"] += event.text
        else:
            out["other"].append(event)
    return out


# --- recorded streams ----------------------------------------------------------------------

RECORDED = [
    (
        "mistral",
        "mistral/stream_thinking.sse",
        "The user says hello, it's a greeting, I should return a greeting.",
        "Hello! How can I help?",
    ),
    ("mistral", "mistral/stream_text.sse", "", "OK"),
    ("openrouter", "openrouter/stream_reasoning.sse", "The user wants", "Hello"),
    ("vllm", "vllm/stream_reasoning.sse", "We need", "Hello!"),
    ("vllm", "vllm/stream_reasoning_content_legacy.sse", "Okay", "Hi"),
    ("llamacpp", "llamacpp/stream_reasoning_content.sse", "<|im_end|>", ""),
    (
        "llamacpp",
        "llamacpp/stream_inline_think.sse",
        "The user's printer shows E-42; source [1] covers it.",
        "Error E-42 means the paper tray is empty [1].",
    ),
    (
        "together",
        "together/stream_reasoning.sse",
        "The user asks which is bigger.",
        "9.9 is bigger.",
    ),
]


@pytest.mark.parametrize(("dialect", "path", "reasoning", "text"), RECORDED)
def test_recorded_streams_keep_reasoning_out_of_the_answer(
    speak, server, dialect, path, reasoning, text
):
    client = speak(dialect)
    server.script(Reply(replay=path))
    got = collect(client.stream(messages=question()))
    assert (got["reasoning"], got["text"]) == (reasoning, text)
    assert "[THINK]" not in got["text"] and "[/THINK]" not in got["text"]
    assert any(isinstance(e, Finished) for e in got["other"])
    assert not any(isinstance(e, StreamFailed) for e in got["other"])


def test_recorded_openrouter_usage_has_its_cost(speak, server):
    client = speak("openrouter")
    server.script(Reply(replay="openrouter/stream_reasoning.sse"))
    (usage,) = [
        e for e in collect(client.stream(messages=question()))["other"] if isinstance(e, Usage)
    ]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost) == (37, 8, 0.000007765)


def test_recorded_midstream_error_ends_the_answer_with_its_reason(speak, server):
    client = speak("openrouter")
    server.script(Reply(replay="openrouter/stream_midstream_error.sse"))
    got = collect(client.stream(messages=question()))
    assert got["text"] == "Hel"
    (failed,) = [e for e in got["other"] if isinstance(e, StreamFailed)]
    assert "Provider disconnected unexpectedly" in failed.message


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in a JSON value ("choices[].delta.content[].type", ...)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, prefix + "[]")
    return paths


def frames_json(frames: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(f[6:]) for f in frames if f.startswith(b"data: {")]


@pytest.mark.parametrize(
    ("dialect", "path", "usage"),
    [
        ("mistral", "mistral/stream_thinking.sse", False),
        ("openrouter", "openrouter/stream_reasoning.sse", False),
        ("vllm", "vllm/stream_reasoning.sse", True),
        ("llamacpp", "llamacpp/stream_reasoning_content.sse", True),
        ("together", "together/stream_reasoning.sse", False),
    ],
)
def test_the_stand_ins_own_streams_have_the_recorded_shapes(dialect, path, usage):
    """What the stand-in generates uses no key, and no nesting, the provider never sent."""
    recorded = frames_json(sse_frames((FIXTURES / path).read_text()))
    speaker = DIALECTS[dialect]
    pieces = [("r", "Checking"), ("r", " the sources."), ("c", "E-42 means"), ("c", " [1].")]
    meta = {"id": "chatcmpl-x", "created": 1, "model": MODEL[dialect]}
    usage_body = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    generated = frames_json(
        list(
            speaker.stream(
                meta, pieces, "stop", usage_body, include_usage=usage, style=speaker.reasoning_style
            )
        )
    )
    allowed = set().union(*(key_paths(c) for c in recorded))
    for chunk in generated:
        assert key_paths(chunk) - allowed == set(), (dialect, chunk)
    assert recorded[-1].get("usage") or usage, "the recorded stream ends with usage"


# --- what Docent sends, each provider's way ------------------------------------------------


def png(width: int, height: int) -> Image:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), "white").save(buffer, "PNG")
    return Image(buffer.getvalue(), "image/png", width, height)


def full_request(reasoning_model: bool) -> list[ChatMessage]:
    system = (
        (*reasoning_system_parts(), Text("Docent's rules."))
        if reasoning_model
        else (Text("Rules."),)
    )
    return [
        ChatMessage("system", system),
        ChatMessage.text("user", "What is E-42?"),
        ChatMessage.text("assistant", "The tray is empty [1].", reasoning="Source 1 says so."),
        ChatMessage("user", (Text("And this screen?"), png(300, 200))),
    ]


SAMPLING = Sampling(
    temperature=0.3,
    top_p=0.9,
    stop=("</end>",),
    seed=42,
    frequency_penalty=0.1,
    presence_penalty=0.2,
)


@pytest.mark.parametrize(
    "dialect", ["mistral", "openrouter", "together", "vllm", "llamacpp", "openai"]
)
def test_each_provider_accepts_what_docent_sends(speak, server, dialect):
    client = speak(dialect)
    events = list(client.stream(messages=full_request(dialect == "vllm"), sampling=SAMPLING))
    assert not [e for e in events if isinstance(e, StreamFailed)]
    (request,) = server.chat_requests
    body = request.body
    assert body["model"] == MODEL[dialect] and request.n_images == 1
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.3, 0.9, ["</end>"])
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.1, 0.2)
    assistant = body["messages"][2]
    if dialect == "mistral":  # its own spellings, and nothing it would refuse
        assert body["random_seed"] == 42 and "seed" not in body and "stream_options" not in body
        assert assistant["content"][0] == {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "Source 1 says so."}],
        }
        assert "reasoning_content" not in assistant
    else:
        assert body["seed"] == 42
    if dialect == "openrouter":
        assert assistant["reasoning"] == "Source 1 says so." and "stream_options" not in body
    if dialect in ("vllm", "llamacpp", "openai", "together"):
        assert body["stream_options"] == {"include_usage": True}
        assert assistant["reasoning_content"] == "Source 1 says so."
    if dialect == "vllm":  # mistral-common encodes exactly what Docent counted
        assert assistant["reasoning"] == "Source 1 says so."
        assert body["messages"][0]["content"][1] == {
            "type": "thinking",
            "thinking": reasoning_system_parts()[1].text,
            "closed": True,
        }
        assert request.prompt_tokens == count_messages(full_request(True))
    if dialect == "mistral":
        assert request.prompt_tokens == count_messages(full_request(False))
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage and usage[0].prompt_tokens == request.prompt_tokens


def test_mistral_refuses_what_other_servers_take(speak, server):
    """The stand-in is as strict as Mistral's API: a field it doesn't know is a 422."""
    speak("mistral")
    import openai

    raw = keep(openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0))
    with pytest.raises(openai.UnprocessableEntityError) as info:
        raw.chat.completions.create(
            model="ministral-8b-2512",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=10,
            temperature=0,
            stream_options={"include_usage": True},
            stream=True,
        )
    detail = info.value.response.json()["message"]["detail"][0]
    assert detail["type"] == "extra_forbidden" and detail["loc"] == ["body", "stream_options"]


def test_inline_reasoning_goes_back_inline(speak, server):
    """A server that spoke [THINK] inline gets the trace back inline on the next turn."""
    client = speak("llamacpp")
    server.script(Reply(replay="llamacpp/stream_inline_think.sse"))
    collect(client.stream(messages=question()))
    assert client.inline_reasoning
    list(client.stream(messages=full_request(False)))
    assistant = server.chat_requests[-1].body["messages"][2]
    assert assistant["content"] == "[THINK]Source 1 says so.[/THINK]The tray is empty [1]."
    assert "reasoning_content" not in assistant


def test_non_streamed_answers_split_reasoning_too(speak, server):
    for dialect in ("mistral", "openrouter", "vllm", "llamacpp"):
        client = speak(dialect)
        server.script(
            Reply(
                text="Standalone question?",
                reasoning="Think first.",
                reasoning_field="inline" if dialect == "llamacpp" else None,
            )
        )
        reasoning, answer, finish = client.complete(messages=question())
        assert (reasoning, answer, finish) == ("Think first.", "Standalone question?", "stop"), (
            dialect
        )


# --- windows from the server ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "models", "model", "window", "vision"),
    [
        ("mistral", None, "ministral-3b-2512", 131_072, True),
        ("mistral", None, "ministral-8b-2410", 131_072, False),
        ("openrouter", None, "mistralai/ministral-8b", 131_072, False),
        (
            "vllm",
            {"mistralai/Ministral-3-8B-Instruct-2512": {"context_window": 65_536}},
            "mistralai/Ministral-3-8B-Instruct-2512",
            65_536,
            True,
        ),
        (
            "llamacpp",
            {"ministral.gguf": {"context_window": 8192}},
            "ministral-3-8b-instruct-2512-q4_k_m",
            8192,
            True,
        ),
        (
            "together",
            {"mistralai/Ministral-3-8B-Instruct-2512": {"context_window": 32_768}},
            "mistralai/Ministral-3-8B-Instruct-2512",
            32_768,
            True,
        ),
    ],
)
def test_the_servers_own_window_wins_over_the_registry(
    speak, server, dialect, models, model, window, vision
):
    speak(dialect, models=models)
    client = client_for(server, dialect, model=model)
    info = client.info
    assert (info.context_window, info.vision, info.window_source) == (window, vision, "server")


def test_llm_context_window_wins_over_everything(speak, server):
    speak("llamacpp", models={"m.gguf": {"context_window": 8192}})
    client = client_for(server, "llamacpp", context_window=4096)
    assert (client.info.context_window, client.info.window_source) == (4096, "LLM_CONTEXT_WINDOW")


def test_unknown_model_on_a_silent_server_warns_once(speak, server, caplog):
    speak("openai", unknown_models=True)
    client = client_for(server, "openai", model="some-other-model")
    with caplog.at_level("WARNING", logger="docent.llm"):
        assert client.info.context_window == 32_768
        assert client.info.context_window == 32_768
    warnings = [r for r in caplog.records if "some-other-model" in r.getMessage()]
    assert len(warnings) == 1 and "LLM_CONTEXT_WINDOW" in warnings[0].getMessage()


def test_too_long_for_llamacpp_names_the_real_window(speak, server):
    speak("llamacpp", models={"m.gguf": {"context_window": 512}})
    client = client_for(server, "llamacpp", discover=False)
    long = [ChatMessage.text("user", "hello " * 1000)]
    with pytest.raises(LLMError) as info:
        list(client.stream(messages=long, max_tokens=16))
    assert (info.value.code, info.value.window) == ("context", 512)
    assert "LLM_CONTEXT_WINDOW" in str(info.value)


# --- waiting and errors --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def patient_client(server: LLMServer, dialect: str, clock: Clock, **changes: Any) -> OpenAIClient:
    config = LLMConfig(
        provider=PROVIDER[dialect],
        base_url=server.base_url,
        api_key="sk-test",
        key_setting="MISTRAL_API_KEY",
        model=MODEL[dialect],
        timeout_seconds=10,
        **changes,
    )
    return keep(OpenAIClient(config, sleep=clock.sleep, clock=lambda: clock.now))


def test_a_busy_model_says_how_long_it_waits(speak, server):
    speak("mistral")
    clock = Clock()
    client = patient_client(server, "mistral", clock)
    server.script(Reply.error(429, retry_after=12))
    events = list(client.stream(messages=question()))
    waits = [e for e in events if isinstance(e, Waiting)]
    assert [round(w.seconds) for w in waits] == [12, 7, 2]  # a countdown every 5 s
    assert waits[0].message == "The model is busy; retrying in 12 s."
    assert sum(clock.slept) == 12
    assert collect(events)["text"] and len(server.chat_requests) == 2


def test_a_long_retry_after_is_reported_at_once(speak, server):
    speak("mistral")
    clock = Clock()
    client = patient_client(server, "mistral", clock, retry_max_seconds=30)
    server.script(Reply.error(429, retry_after=90))
    with pytest.raises(LLMError) as info:
        list(client.stream(messages=question()))
    assert (info.value.code, info.value.retry_after) == ("rate_limited", 90)
    assert "wait 90 s" in str(info.value)
    assert clock.slept == [] and len(server.chat_requests) == 1


def test_retries_stop_within_the_total_cap(speak, server):
    speak("mistral")
    clock = Clock()
    client = patient_client(server, "mistral", clock, max_retries=10, retry_max_seconds=5)
    server.script(Reply.error(503, times=20))
    with pytest.raises(LLMError) as info:
        list(client.stream(messages=question()))
    assert info.value.code == "unavailable"
    assert sum(clock.slept) <= 5


@pytest.mark.parametrize(
    ("dialect", "setting"), [("mistral", "MISTRAL_API_KEY"), ("openrouter", "OPENROUTER_API_KEY")]
)
def test_a_rejected_key_names_the_setting_that_holds_it(speak, server, dialect, setting):
    speak(dialect)
    config = LLMConfig(
        provider=PROVIDER[dialect],
        base_url=server.base_url,
        api_key="wrong",
        key_setting=setting,
        model=MODEL[dialect],
    )
    with pytest.raises(LLMError) as info:
        list(keep(OpenAIClient(config)).stream(messages=question()))
    assert info.value.code == "auth"
    assert re.fullmatch(rf".* rejected the API key in {setting} \(HTTP 401\)\.", str(info.value))
    assert "wrong" not in str(info.value)


def test_recorded_provider_errors_read_well(speak, server):
    for dialect, status, expected in [
        ("openrouter", 402, "requires more credits"),
        ("mistral", 422, "Extra inputs are not permitted"),
    ]:
        client = speak(dialect)
        path = (
            f"{dialect}/error_{status}.json"
            if status != 422
            else "mistral/error_422_extra_forbidden.json"
        )
        server.script(Reply(replay=path))
        with pytest.raises(LLMError) as info:
            list(client.stream(messages=question()))
        assert expected in str(info.value) and f"HTTP {status}" in str(info.value)


def test_system_thinking_parts_are_inline_for_servers_without_mistral_common(speak, server):
    speak("llamacpp")
    client = client_for(server, "llamacpp")
    list(
        client.stream(
            messages=[
                ChatMessage("system", (Text("A"), Thinking("B"), Text("C"))),
                ChatMessage.text("user", "q"),
            ]
        )
    )
    assert server.chat_requests[-1].body["messages"][0]["content"] == "A[THINK]B[/THINK]C"


def test_models_the_stand_in_serves_are_its_dialects_own(server):
    server.reset()
    server.config.update({"dialect": "mistral"})
    assert server.models["ministral-8b-2512"] == ModelInfo(262_144, vision=True)

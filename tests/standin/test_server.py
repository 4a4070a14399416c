"""The stand-in Ministral server, driven with the real openai SDK over loopback HTTP.

Run without Django: python -m pytest tests/standin/test_server.py -q -p no:django
"""

from __future__ import annotations

import base64
import io
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from standin import NO_ANSWER, LLMServer, Reply, count_prompt_tokens, default_answer

MODEL = "ministral-8b-2512"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[LLMServer]:
    with LLMServer() as srv:
        yield srv


_OPEN: list[Any] = []  # clients a test made, closed when it ends


def sdk(**kwargs: Any) -> openai.OpenAI:
    """An openai SDK client, closed at the end of the test that made it."""
    client = openai.OpenAI(**kwargs)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _fresh(server: LLMServer) -> Any:
    server.reset()
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture
def client(server: LLMServer) -> openai.OpenAI:
    return sdk(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=20)


def ask(client: openai.OpenAI, messages: list[dict[str, Any]], **kw: Any) -> Any:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 512, "temperature": 0.1}
    params.update(kw)
    return client.chat.completions.create(messages=messages, **params)


def rag_messages(question: str = "How do I start the pump?") -> list[dict[str, Any]]:
    sources = (
        "[1] pump-manual.pdf, page 3\n"
        "The pump must be primed with water before the first start. It runs at 50 Hz.\n\n"
        "[2] safety.pdf, page 1\nAlways disconnect the mains first."
    )
    return [
        {"role": "system", "content": "Answer only from the numbered sources and cite them."},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {question}"},
    ]


def png_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def stream_text(stream: Any) -> tuple[str, list[Any]]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# ------------------------------------------------------------------------------------------
# happy paths
# ------------------------------------------------------------------------------------------


def test_json_completion_reports_exact_prompt_tokens(
    server: LLMServer, client: openai.OpenAI
) -> None:
    msgs = rag_messages()
    resp = ask(client, msgs)
    expected = count_prompt_tokens(msgs)
    assert resp.usage.prompt_tokens == expected
    assert resp.usage.total_tokens == expected + resp.usage.completion_tokens
    answer = resp.choices[0].message.content
    assert answer == "The pump must be primed with water before the first start [1]."
    assert resp.choices[0].finish_reason == "stop"
    rec = server.chat_requests[-1]
    assert rec.prompt_tokens == expected and rec.status == 200 and rec.completed
    assert rec.body["messages"] == msgs and rec.headers["authorization"] == "Bearer test-key"
    assert rec.missing_params == [] and rec.stream is False


def test_streaming_completion_has_usage_in_final_chunk(
    server: LLMServer, client: openai.OpenAI
) -> None:
    msgs = rag_messages()
    text, chunks = stream_text(ask(client, msgs, stream=True))
    assert text == "The pump must be primed with water before the first start [1]."
    assert len(chunks) > 5  # streamed piece by piece
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.prompt_tokens == count_prompt_tokens(msgs)
    assert all(c.usage is None for c in chunks[:-1])
    rec = server.chat_requests[-1]
    assert rec.stream and rec.completed and rec.response_text == text


@pytest.mark.parametrize(
    "user",
    [
        "Context:\n[1] Title line\nFirst fact here. Second.\n[2] x\nOther.\n\nQ: what?",
        '<source id="1" title="t">\nFirst fact here. More.\n</source>\n<source id="2">B.</source>',
        "Source 1: First fact here. More text.\nSource 2: Something else.\n\nQuestion?",
        "### [1] notes.md\n\nFirst fact here!\n\n### [2] other.md\n\nNope.",
    ],
)
def test_default_answer_quotes_and_cites_first_source(user: str) -> None:
    answer = default_answer([{"role": "user", "content": user}])
    assert answer.startswith("First fact here")
    assert "[1]" in answer


def test_default_answer_without_sources(client: openai.OpenAI) -> None:
    resp = ask(client, [{"role": "user", "content": "What is the capital of Mars?"}])
    assert resp.choices[0].message.content == NO_ANSWER


def test_images_are_counted_like_mistral_common(server: LLMServer, client: openai.OpenAI) -> None:
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": png_url(1024, 768)}},
                {"type": "image_url", "image_url": png_url(2480, 3508)},  # plain string form
            ],
        }
    ]
    resp = ask(client, msgs)
    assert resp.usage.prompt_tokens == count_prompt_tokens(msgs)
    assert resp.usage.prompt_tokens > 1064 + 2200
    rec = server.chat_requests[-1]
    assert rec.n_images == 2 and len(rec.image_bytes) == 2


def test_reasoning_and_cost_scripted(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(
        Reply(text="Prime it [1].", reasoning="The source says prime.", cost=0.00042),
        Reply(text="Streamed [1].", reasoning="Think twice.", reasoning_field="reasoning"),
    )
    resp = ask(client, rag_messages())
    msg = resp.choices[0].message
    assert msg.content == "Prime it [1]."
    assert msg.model_extra["reasoning_content"] == "The source says prime."
    assert resp.usage.model_extra["cost"] == 0.00042
    text, chunks = stream_text(ask(client, rag_messages(), stream=True))
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    assert (text, reasoning) == ("Streamed [1].", "Think twice.")
    assert server.pending == []


def test_reasoning_history_is_counted_with_think_tokens(client: openai.OpenAI) -> None:
    msgs = [
        *rag_messages(),
        {"role": "assistant", "content": "Prime it [1].", "reasoning_content": "Source 1 says so."},
        {"role": "user", "content": "And then?"},
    ]
    resp = ask(client, msgs)
    assert resp.usage.prompt_tokens == count_prompt_tokens(msgs)


def test_max_tokens_truncates_with_finish_reason_length(client: openai.OpenAI) -> None:
    resp = ask(client, rag_messages(), max_tokens=3)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.completion_tokens == 3


def test_models_endpoint(server: LLMServer, client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"ministral-3b-2512", "ministral-8b-2512", "ministral-14b-2512"} <= ids
    assert "ministral-8b-2410" in ids
    assert server.requests[-1].path == "/v1/models"


def test_fifo_script_with_times(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(Reply(text="A", times=2), "B")
    got = [ask(client, rag_messages()).choices[0].message.content for _ in range(4)]
    assert got[:3] == ["A", "A", "B"]
    assert got[3].endswith("[1].")  # back to the default answer


# ------------------------------------------------------------------------------------------
# fault injection
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["mistral", "openrouter"])
def test_429_carries_retry_after(server: LLMServer, client: openai.OpenAI, style: str) -> None:
    server.script(Reply.error(429, retry_after=7, style=style))
    with pytest.raises(openai.RateLimitError) as info:
        ask(client, rag_messages())
    response = info.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    body = response.json()
    if style == "mistral":  # as Mistral's API sends it
        assert body == {"message": "Requests rate limit exceeded"}
    else:
        assert body["error"]["code"] == 429
    assert server.chat_requests[-1].status == 429


def test_sdk_retries_honour_retry_after(server: LLMServer) -> None:
    client = sdk(base_url=server.base_url, api_key="k", max_retries=2, timeout=10)
    server.script(Reply.error(429, retry_after=0.4))
    start = time.monotonic()
    resp = ask(client, rag_messages())
    assert resp.choices[0].message.content.endswith("[1].")
    assert time.monotonic() - start >= 0.4
    assert [r.status for r in server.chat_requests] == [429, 200]


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_server_errors(server: LLMServer, client: openai.OpenAI, status: int, exc: type) -> None:
    server.script(Reply.error(status))
    with pytest.raises(exc) as info:
        ask(client, rag_messages(), stream=True)
    assert info.value.status_code == status


def test_hang_longer_than_client_timeout(server: LLMServer) -> None:
    client = sdk(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.5)
    server.script(Reply.hang(3))
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client, rag_messages())
    assert time.monotonic() - start < 2.5


def test_hang_mid_stream(server: LLMServer) -> None:
    client = sdk(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.5)
    server.script(Reply.hang(3, mid_stream=True, after_tokens=2))
    got: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in ask(client, rag_messages(), stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "The pump"


def test_stop_does_not_wait_for_hanging_handlers() -> None:
    with LLMServer() as srv:
        client = sdk(base_url=srv.base_url, api_key="k", max_retries=0, timeout=0.3)
        srv.script(Reply.hang(60))
        with pytest.raises(openai.APITimeoutError):
            ask(client, rag_messages())
        start = time.monotonic()
    assert time.monotonic() - start < 3


def test_dropped_connection_mid_stream(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(Reply.drop(after_tokens=3))
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in ask(client, rag_messages(), stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "The pump must"


def test_malformed_sse(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(Reply.malformed(after_tokens=2))
    got: list[str] = []
    with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK's SSE decoder
        for chunk in ask(client, rag_messages(), stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "The pump"


def test_openrouter_mid_stream_error_event(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(Reply.error_event(502, "Upstream provider died", after_tokens=4))
    got: list[str] = []
    with pytest.raises(openai.APIError, match="Upstream provider died") as info:
        for chunk in ask(client, rag_messages(), stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert not isinstance(info.value, openai.APIStatusError)  # it came under HTTP 200
    assert "".join(got) == "The pump must be"
    assert server.chat_requests[-1].status == 200


def test_openrouter_processing_comments(server: LLMServer, client: openai.OpenAI) -> None:
    server.script(Reply(text="Hello there [1].", processing_comments=3))
    text, _ = stream_text(ask(client, rag_messages(), stream=True))
    assert text == "Hello there [1]."
    server.script(Reply(text="Raw.", processing_comments=2))
    body = {
        "model": MODEL,
        "messages": rag_messages(),
        "max_tokens": 50,
        "temperature": 0.0,
        "stream": True,
    }
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body) as resp:
        raw = resp.read().decode()
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert raw.startswith(": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {")
    assert raw.endswith("data: [DONE]\n\n")


def test_client_disconnect_is_recorded(server: LLMServer, client: openai.OpenAI) -> None:
    server.config.delay_per_token = 0.05
    server.script(Reply(text=" ".join(["word"] * 200)))
    stream = ask(client, rag_messages(), stream=True)
    next(iter(stream))
    next(iter(stream))
    stream.close()
    rec = server.wait_for_requests(1, timeout=10)[-1]
    assert rec.client_disconnected and not rec.completed


# ------------------------------------------------------------------------------------------
# validation like the real API
# ------------------------------------------------------------------------------------------


def test_too_many_images(server: LLMServer, client: openai.OpenAI) -> None:
    url = png_url(32, 32)
    parts = [{"type": "image_url", "image_url": {"url": url}} for _ in range(9)]
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, [{"role": "user", "content": [{"type": "text", "text": "hi"}, *parts]}])
    body = info.value.response.json()
    assert body["object"] == "error" and "Too many images" in body["message"]
    assert set(body) == {"object", "message", "type", "param", "code"}
    ok = [{"role": "user", "content": parts[:8]}]
    assert ask(client, ok).usage.prompt_tokens == count_prompt_tokens(ok)


def test_image_over_10_mb(client: openai.OpenAI) -> None:
    blob = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{blob}"}}
            ],
        }
    ]
    with pytest.raises(openai.BadRequestError, match="Image too large"):
        ask(client, msgs)


def test_image_to_text_only_model(client: openai.OpenAI) -> None:
    msgs = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_url(8, 8)}}]}
    ]
    with pytest.raises(openai.BadRequestError, match="does not support image"):
        ask(client, msgs, model="ministral-8b-2410")


def long_prompt(target: int) -> list[dict[str, Any]]:
    """A single user message of exactly ``target`` prompt tokens."""
    base = count_prompt_tokens([{"role": "user", "content": "go"}])  # <s>[INST]go[/INST]
    msgs = [{"role": "user", "content": "go" + " hello" * (target - base)}]
    assert count_prompt_tokens(msgs) == target
    return msgs


def test_context_window_including_max_tokens(server: LLMServer, client: openai.OpenAI) -> None:
    msgs = long_prompt(261_144)
    resp = ask(client, msgs, max_tokens=1_000)  # exactly 262,144: allowed
    assert resp.usage.prompt_tokens == 261_144 == count_prompt_tokens(msgs)
    with pytest.raises(openai.BadRequestError, match="262144 maximum context length") as info:
        ask(client, msgs, max_tokens=1_001)
    assert info.value.response.json()["object"] == "error"
    assert server.chat_requests[-1].prompt_tokens == 261_144


def test_prompt_longer_than_window(client: openai.OpenAI) -> None:
    msgs = long_prompt(132_000)
    assert ask(client, msgs, max_tokens=10).usage.prompt_tokens == 132_000
    with pytest.raises(openai.BadRequestError, match="131072 maximum context length"):
        ask(client, msgs, max_tokens=10, model="ministral-8b-2410")


def test_missing_max_tokens_or_temperature(server: LLMServer, client: openai.OpenAI) -> None:
    msgs = rag_messages()
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model=MODEL, messages=msgs, temperature=0.1)
    body = info.value.response.json()  # Mistral's 422: message.detail like FastAPI
    assert body["object"] == "error"
    assert body["message"]["detail"][0]["loc"] == ["body", "max_tokens"]
    assert server.chat_requests[-1].missing_params == ["max_tokens"]
    server.config.strict_params = False
    client.chat.completions.create(model=MODEL, messages=msgs)
    rec = server.chat_requests[-1]
    assert rec.status == 200 and rec.missing_params == ["max_tokens", "temperature"]


def test_schema_and_mistral_common_validation(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError):
        ask(client, [])
    with pytest.raises(openai.UnprocessableEntityError):
        ask(client, [{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}])
    with pytest.raises(openai.BadRequestError, match="Expected last role"):
        ask(client, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(openai.BadRequestError, match="Invalid model"):
        ask(client, rag_messages(), model="gpt-4o")
    with pytest.raises(openai.UnprocessableEntityError):
        ask(client, rag_messages(), temperature=2.5)
    assert ask(client, rag_messages(), temperature=1.3).choices  # > 1 is fine for real APIs


def test_api_key_enforcement(server: LLMServer) -> None:
    server.config.api_key = "secret"
    bad = sdk(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        ask(bad, rag_messages())
    good = sdk(base_url=server.base_url, api_key="secret", max_retries=0)
    assert ask(good, rag_messages()).choices[0].message.content


# ------------------------------------------------------------------------------------------
# control API, concurrency, subprocess
# ------------------------------------------------------------------------------------------


def test_control_api_over_http(server: LLMServer, client: openai.OpenAI) -> None:
    http = httpx.Client(base_url=server.url, timeout=10)
    _OPEN.append(http)
    assert http.get("/_control/health").json() == {"ok": True}
    r = http.post("/_control/script", json={"replies": [{"text": "Scripted."}, "Plain."]})
    assert r.json() == {"pending": 2}
    assert [p["text"] for p in http.get("/_control/script").json()["pending"]] == [
        "Scripted.",
        "Plain.",
    ]
    assert ask(client, rag_messages()).choices[0].message.content == "Scripted."
    assert ask(client, rag_messages()).choices[0].message.content == "Plain."
    reqs = http.get("/_control/requests").json()["requests"]
    assert [r["prompt_tokens"] for r in reqs] == [count_prompt_tokens(rag_messages())] * 2
    assert reqs[0]["body"]["messages"] == rag_messages()
    assert (
        http.get("/_control/requests", params={"since": 1, "bodies": 0}).json()["requests"][0][
            "body"
        ]
        is None
    )
    cfg = http.post("/_control/config", json={"delay_per_token": 0.001}).json()
    assert cfg["delay_per_token"] == 0.001
    assert http.post("/_control/script", json={"fault": "nope"}).status_code == 400
    assert http.delete("/_control/requests").json() == {"ok": True}
    assert server.requests == []
    assert http.post("/_control/reset").json() == {"ok": True}
    assert server.config.delay_per_token == 0.0


def test_many_concurrent_streams(server: LLMServer) -> None:
    server.config.delay_per_token = 0.01
    client = sdk(base_url=server.base_url, api_key="k", max_retries=0, timeout=60)
    msgs = rag_messages()
    expected = "The pump must be primed with water before the first start [1]."

    def one(_: int) -> tuple[str, int]:
        text, chunks = stream_text(ask(client, msgs, stream=True))
        return text, chunks[-1].usage.prompt_tokens

    start = time.monotonic()
    with ThreadPoolExecutor(60) as pool:
        results = list(pool.map(one, range(60)))
    elapsed = time.monotonic() - start
    assert all(r == (expected, count_prompt_tokens(msgs)) for r in results)
    recs = server.chat_requests
    assert len(recs) == 60 and all(r.completed for r in recs)
    # 12 pieces x 10 ms each: concurrent streams overlap instead of queueing
    assert elapsed < 60 * 12 * 0.01 / 2, elapsed


def test_runs_as_subprocess() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standin", "--port", "0", "--delay-per-token", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "server did not print its port"
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        httpx.post(base + "/_control/script", json=[{"text": "From the subprocess [1]."}])
        client = sdk(base_url=base + "/v1", api_key="k", max_retries=0, timeout=20)
        text, chunks = stream_text(ask(client, rag_messages(), stream=True))
        assert text == "From the subprocess [1]."
        assert chunks[-1].usage.prompt_tokens == count_prompt_tokens(rag_messages())
        reqs = httpx.get(base + "/_control/requests").json()["requests"]
        assert reqs[-1]["reply"]["text"] == "From the subprocess [1]."
        assert json.loads(json.dumps(reqs))  # JSON-serialisable
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        proc.stdout.close()
        proc.stderr.close()

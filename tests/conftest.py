"""Shared fixtures: the real model, the real Chroma server, real worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"The shared test data is missing at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def embedder():
    from ingest.pipeline.embed import get_embedder

    return get_embedder(settings.EMBEDDING_MODEL_PATH)


@pytest.fixture(scope="session")
def store():
    from ingest.store import get_store

    return get_store()


@pytest.fixture(scope="session")
def tools(embedder, store):
    from assistant.tokens import get_counter
    from ingest.services import IngestTools

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

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


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

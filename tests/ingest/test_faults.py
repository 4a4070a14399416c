"""Faults: Chroma restarting under ingest and chat, and a locked database. Nothing lost."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from assistant.askers import Asker
from assistant.services import answer_stream
from ingest.models import Chunk, Document
from ingest.services import document_create, kb_update
from tests import factories
from tests.conftest import free_port, subprocess_env, uvicorn, wait_for_document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def chroma_server_pids() -> list[int]:
    target = str(Path(settings.DATA_DIR) / "chroma")
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "chromadb.cli" in cmdline and target in cmdline:
                pids.append(int(proc.name))
    return pids


def kill_chroma() -> None:
    pids = chroma_server_pids()
    assert pids, "no Chroma server to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_chroma_restart_during_ingest_loses_nothing(worker_factory, kb, store, shared):
    store.heartbeat()  # the server is up before the worker starts
    manual = (
        shared / "corpora/pdf-samples/009-pdflatex-geotopo/GeoTopo-komprimiert.pdf"
    ).read_bytes()
    document = document_create(kb=kb, filename="geotopo.pdf", content=io.BytesIO(manual)).document
    worker_factory()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if (
            document.status == "processing"
            and Chunk.objects.count() == 0
            and document.progress >= 10
        ):
            break
        time.sleep(0.1)
    kill_chroma()  # mid-document: the worker must reconnect to a fresh server
    document = wait_for_document(document.pk, timeout=600)
    assert document.status == "ready", document.error
    assert document.page_count == 117
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert len(rows) == document.chunk_count
    assert store.ids(collection=kb.collection_name) == rows


def test_chroma_restart_during_chat(kb, ingest_text, llm_server, store):
    ingest_text(kb, "printer.md", "# Errors\n\nError E-42 means the paper tray is jammed.")
    kill_chroma()
    events = list(answer_stream(kb=kb, asker=Asker.for_cli(), question="What does E-42 mean?"))
    done = events[-1].data
    assert done["status"] == "complete"
    sources = next(e.data["sources"] for e in events if e.kind == "sources")
    assert sources and sources[0]["document"] == "printer.md"  # retrieval reached the new server


def test_a_chroma_server_that_never_answers_fails_within_the_timeout():
    """A server that accepts connections and then says nothing (stalled, or a wrong port
    behind a proxy) must not hold a question or an ingest forever."""
    import socket

    from ingest.store import ChromaStore, StoreUnavailable

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepted by the kernel, never read: every request waits
    store = ChromaStore(url=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.heartbeat()
    assert time.monotonic() - started < 15  # four tries of half a second, with back-off
    listener.close()


def _hold_write_lock(seconds: float, ready: threading.Event) -> None:
    database = settings.DATABASES["default"]["TEST"]["NAME"]
    connection = sqlite3.connect(database, timeout=30, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


def test_locked_database_answers_503_then_recovers_with_nothing_lost(kb, tmp_path):
    kb_update(kb=kb, visibility="public")
    port = free_port()
    env = subprocess_env(SQLITE_BUSY_TIMEOUT="0.5")
    web = uvicorn(port, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/accounts/login/", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and web.poll() is None
                time.sleep(0.2)
        from assistant.keys import api_key_create

        _, token = api_key_create(name="t", knowledge_bases=[kb], can_write=True)
        headers = {"Authorization": f"Bearer {token}"}
        ready = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(4, ready))
        holder.start()
        ready.wait(10)
        busy = httpx.post(
            f"{url}/api/kbs/{kb.slug}/documents",
            files={"files": ("a.md", b"# A\n\nalpha")},
            headers=headers,
            timeout=30,
        )
        holder.join()
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
        assert not Document.objects.exists()  # the refused upload left nothing behind
        retry = httpx.post(
            f"{url}/api/kbs/{kb.slug}/documents",
            files={"files": ("a.md", b"# A\n\nalpha")},
            headers=headers,
            timeout=30,
        )
        assert retry.status_code == 201 and Document.objects.count() == 1
    finally:
        web.terminate()
        web.wait(15)


def test_worker_waits_out_a_locked_database(worker_factory, kb, store):
    worker = worker_factory(SQLITE_BUSY_TIMEOUT="0.5", WORKER_LEASE_SECONDS="4")
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(3, ready))
    document = document_create(
        kb=kb, filename="scan.pdf", content=io.BytesIO(factories.text_pdf(["Locked out once."] * 3))
    ).document
    holder.start()  # the worker finds the database locked while it claims or writes
    ready.wait(10)
    holder.join()
    try:
        document = wait_for_document(document.pk, timeout=120)
    finally:
        if worker.proc.poll() is not None:
            print("WORKER EXITED", worker.proc.returncode, worker.proc.stdout.read()[-5000:])
    assert worker.proc.poll() is None, "the worker died"
    assert document.status == "ready", document.error
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert store.ids(collection=kb.collection_name) == rows

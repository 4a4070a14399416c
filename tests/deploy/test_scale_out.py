"""Scale-out on real parts: PostgreSQL, a `chroma run` server, two web processes, two workers.

20 documents are uploaded concurrently through both web processes while people chat;
every document must be processed exactly once, nothing lost, and chat must keep working.
The processes are started exactly as deploy/Procfile describes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, chroma_run, free_port, uvicorn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server():
    root = Path(tempfile.mkdtemp(prefix="docent-chroma-"))
    port = free_port()
    server = chroma_run(root, port)
    url = f"http://127.0.0.1:{port}"
    yield url
    server.terminate()
    server.wait(30)
    shutil.rmtree(root, ignore_errors=True)


def test_two_webs_two_workers_postgres_and_chroma(
    postgres, chroma_server, llm_server_session, tmp_path
):
    shared_media = tmp_path / "media"
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
        "DATABASE_URL": postgres,
        "CHROMA_URL": chroma_server,
        "MEDIA_DIR": str(shared_media),  # the shared path every machine mounts
        "SECRET_KEY": "scale-out-test-secret-key-" + "x" * 40,
        "LLM_BASE_URL": llm_server_session.base_url,
        "LLM_API_KEY": "k",
        "LLM_MODEL": "ministral-8b-2512",
        "WORKER_LEASE_SECONDS": "20",
        "PYTHONUNBUFFERED": "1",
    }

    def machine(
        n: int,
    ) -> dict[str, str]:  # each process its own local DATA_DIR, like separate hosts
        return {**base_env, "DATA_DIR": str(tmp_path / f"host{n}")}

    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput"], env=machine(0), check=True, capture_output=True, cwd=REPO
    )
    setup = (
        "from ingest.services import kb_get_or_create, kb_update; "
        "kb_update(kb=kb_get_or_create(name='Fleet'), visibility='public')"
    )
    subprocess.run(
        [*manage, "shell", "-c", setup], env=machine(0), check=True, capture_output=True, cwd=REPO
    )
    token = subprocess.run(
        [*manage, "apikey", "--name", "loader", "--kb", "Fleet", "--write"],
        env=machine(0),
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.strip()

    processes: list[subprocess.Popen] = []
    webs = []
    try:
        for n in (1, 2):
            port = free_port()
            processes.append(
                uvicorn(port, machine(n), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            webs.append(f"http://127.0.0.1:{port}")
        for n in (3, 4):
            processes.append(
                subprocess.Popen(
                    [*manage, "worker"],
                    env=machine(n),
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        headers = {"Authorization": f"Bearer {token}"}
        for web in webs:
            _wait_http(f"{web}/api/kbs", headers)

        docs = {
            f"unit-{i:02d}.md": f"# Unit {i}\n\nMachine unit {i} runs at {1000 + i} rpm."
            for i in range(20)
        }
        uploaded: dict[str, int] = {}
        failures: list[str] = []

        def upload(name: str, text: str, web: str) -> None:
            response = httpx.post(
                f"{web}/api/kbs/fleet/documents",
                files={"files": (name, text.encode())},
                headers=headers,
                timeout=60,
            )
            if response.status_code != 201:
                failures.append(f"{name}: {response.status_code} {response.text[:200]}")
            else:
                uploaded[name] = response.json()[0]["document"]["id"]

        threads = [
            threading.Thread(target=upload, args=(name, text, webs[i % 2]))
            for i, (name, text) in enumerate(docs.items())
        ]
        for thread in threads:
            thread.start()
        answers = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # chat while ingestion runs
            web = webs[len(answers) % 2]
            reply = httpx.post(
                f"{web}/api/kbs/fleet/chat",
                json={"question": "How fast does unit 7 run?"},
                headers=headers,
                timeout=60,
            )
            answers.append((reply.status_code, reply.json().get("status")))
            listing = httpx.get(
                f"{webs[0]}/api/kbs/fleet/documents", headers=headers, timeout=30
            ).json()["items"]
            settled = len(listing) == 20 and all(
                d["status"] in ("ready", "failed") for d in listing
            )
            if settled and len(answers) >= 2:  # each web has answered at least once
                break
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        assert not failures
        assert len(uploaded) == 20
        assert all(answer == (200, "complete") for answer in answers), answers
        assert len(answers) >= 2
        final = httpx.get(f"{webs[1]}/api/kbs/fleet/documents", headers=headers, timeout=30)
        final = final.json()["items"]
        assert sorted(d["filename"] for d in final) == sorted(docs)  # nothing lost
        assert all(d["status"] == "ready" for d in final), [
            (d["filename"], d["error"]) for d in final
        ]
        answer = httpx.post(
            f"{webs[1]}/api/kbs/fleet/chat",
            json={"question": "How fast does unit 7 run?"},
            headers=headers,
            timeout=60,
        ).json()
        assert any(s["document"] == "unit-07.md" for s in answer["sources"])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    _assert_exactly_once(postgres, chroma_server, set(uploaded.values()))


def _assert_exactly_once(database_url: str, chroma_url: str, document_ids: set[int]) -> None:
    import chromadb
    import psycopg
    from chromadb.config import Settings

    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id, attempts, generation, chunk_count FROM ingest_document"
        ).fetchall()
        assert {r[0] for r in rows} == document_ids
        assert all(attempts == 1 and generation == 1 for _, attempts, generation, _ in rows), rows
        tasks = connection.execute(
            "SELECT status, count(*) FROM django_tasks_database_dbtaskresult GROUP BY status"
        ).fetchall()
        assert dict(tasks) == {"SUCCESSFUL": 20}, tasks  # one task per document, each run once
        vector_ids = {
            r[0] for r in connection.execute("SELECT vector_id FROM ingest_chunk").fetchall()
        }
        collection = connection.execute("SELECT uid FROM ingest_knowledgebase").fetchone()[0]
    client = chromadb.HttpClient(
        host="127.0.0.1",
        port=int(chroma_url.rsplit(":", 1)[1]),
        settings=Settings(anonymized_telemetry=False),
    )
    stored = set(client.get_collection(f"docent_kb_{collection.hex}").get(include=[])["ids"])
    assert stored == vector_ids and len(vector_ids) >= 20


def _wait_http(url: str, headers: dict, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never came up")

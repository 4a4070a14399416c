"""One Chroma server per DATA_DIR, shared safely by every process, gone when unused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest import chromaserver
from tests.conftest import REPO

CLIENT = """
import sys, time
from pathlib import Path
from ingest.chromaserver import ensure_local_server
from ingest.store import ChromaStore
import numpy as np
data_dir = Path(sys.argv[1])
url = ensure_local_server(data_dir)
store = ChromaStore(url=url)
n = int(sys.argv[2])
store.upsert(collection="shared-test", ids=[f"p{n}-{i}" for i in range(50)],
             vectors=np.random.rand(50, 8).astype("float32"), metadatas=[{"doc": n, "gen": 1}] * 50)
print(url, flush=True)
time.sleep(float(sys.argv[3]))
"""


def run_clients(data_dir: Path, count: int, linger: float) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(data_dir), str(n), str(linger)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]


def server_processes(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "chromadb.cli" in cmdline and str(data_dir / "chroma") in cmdline:
            pids.append(int(proc.name))
    return pids


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path
    for pid in server_processes(tmp_path):
        os.kill(pid, signal.SIGKILL)


def test_concurrent_processes_share_one_server_and_see_each_others_data(data_dir):
    clients = run_clients(data_dir, 4, linger=3)
    urls = {c.communicate(timeout=120)[0].strip() for c in clients}
    assert all(c.returncode == 0 for c in clients)
    assert len(urls) == 1  # every process talks to the same server...
    assert len(server_processes(data_dir)) == 1  # ...and only one server owns the path
    from ingest.store import ChromaStore

    store = ChromaStore(url=urls.pop())
    assert len(store.ids(collection="shared-test")) == 200  # no writes lost


def test_server_stops_after_its_last_user_and_data_survives(data_dir):
    (client,) = run_clients(data_dir, 1, linger=0)
    assert client.communicate(timeout=120)[1] is not None and client.returncode == 0
    wait_until(
        lambda: not server_processes(data_dir),
        chromaserver.IDLE_GRACE_SECONDS + 15,
        "the idle server to stop",
    )
    assert not (data_dir / "run/chroma.json").exists()
    (again,) = run_clients(data_dir, 1, linger=0)  # starts a fresh server on the same path
    url = again.communicate(timeout=120)[0].strip()
    from ingest.store import ChromaStore

    assert len(ChromaStore(url=url).ids(collection="shared-test")) == 50


def test_a_killed_keeper_takes_its_server_down_and_a_new_one_starts(data_dir):
    (client,) = run_clients(data_dir, 1, linger=30)
    client.stdout.readline()
    keeper = json.loads((data_dir / "run/chroma.json").read_text())["pid"]
    (server,) = server_processes(data_dir)
    os.kill(keeper, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{server}").exists() or _zombie(server), 15, "server exit")
    (second,) = run_clients(data_dir, 1, linger=0)
    assert second.communicate(timeout=120)[0].startswith("http://127.0.0.1:")
    assert len(server_processes(data_dir)) == 1
    client.kill()
    client.communicate(timeout=30)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

"""One local `chroma run` server per DATA_DIR, shared by every Docent process.

Chroma's embedded PersistentClient corrupts data when two processes open one path,
and Docent always has at least two (web and worker; the ingest CLI may be a third).
So every process talks HTTP to a single server, and file locks make that safe:

- `run/chroma.lock` is held (flock) by the server for its whole life: at most one
  server per path, whoever starts it, and the kernel frees it if the server dies.
- `run/chroma.users` is held shared by every process using the server. The keeper
  process stops the server once nobody has held it for a grace period, so the CLI
  works whether or not the app is running and nothing is left behind.

With CHROMA_URL set (production), none of this runs; see store.py.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

IDLE_GRACE_SECONDS = 10.0
_users_fd: int | None = None


class ChromaServerError(RuntimeError):
    pass


def _paths(data_dir: Path) -> tuple[Path, Path, Path, Path]:
    run = data_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    return data_dir / "chroma", run / "chroma.lock", run / "chroma.users", run / "chroma.json"


def ensure_local_server(data_dir: Path, *, timeout: float = 90.0) -> str:
    """URL of the Chroma server for data_dir, starting one if none runs.

    Registers this process as a user for as long as it lives.
    """
    global _users_fd
    db_path, lock_path, users_path, info_path = _paths(data_dir)
    deadline = time.monotonic() + timeout
    if _users_fd is None:
        fd = os.open(users_path, os.O_RDWR | os.O_CREAT, 0o600)
        _flock_until(fd, fcntl.LOCK_SH, deadline, "waiting for a stopping Chroma server")
        _users_fd = fd
    last_error = "no server yet"
    while time.monotonic() < deadline:
        # Whoever gets the path lock starts the server; everyone else waits for it. Trying
        # again in the loop covers a server that dies (or stops for idleness) meanwhile.
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            with contextlib.suppress(FileNotFoundError):
                info_path.unlink()
            _spawn_keeper(data_dir, db_path, info_path, lock_fd)
        finally:
            os.close(lock_fd)
        url, last_error = _ready_url(info_path, data_dir, min(deadline, time.monotonic() + 30))
        if url:
            return url
    log = data_dir / "logs" / "chroma.log"
    raise ChromaServerError(f"The local Chroma server did not start ({last_error}); see {log}.")


def release_local_server() -> None:
    """Stop counting this process as a user (the server stops after the grace period)."""
    global _users_fd
    if _users_fd is not None:
        os.close(_users_fd)
        _users_fd = None


def _flock_until(fd: int, op: int, deadline: float, what: str) -> None:
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ChromaServerError(f"Timed out {what}.") from None
            time.sleep(0.05)


def _spawn_keeper(data_dir: Path, db_path: Path, info_path: Path, lock_fd: int) -> None:
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "chroma.log", "ab")  # noqa: SIM115 - handed to the child
    args = [sys.executable, "-m", "ingest.chromaserver", "--data-dir", str(data_dir)]
    args += ["--lock-fd", str(lock_fd)]
    keeper = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=(lock_fd,),
        start_new_session=True,  # outlives the starter; Ctrl-C in a terminal doesn't reach it
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    log.close()
    # Reap the keeper if it ends before this process does (no zombie, no stray Popen).
    threading.Thread(target=keeper.wait, name="chroma-keeper-reaper", daemon=True).start()


def _ready_url(info_path: Path, data_dir: Path, until: float) -> tuple[str, str]:
    """(url, "") once the running server answers, or ("", why not) when its keeper is gone."""
    last_error = "no server information yet"
    while time.monotonic() < until:
        try:
            info = json.loads(info_path.read_text())
            url = f"http://127.0.0.1:{info['port']}"
            if not _alive(info["pid"], data_dir):
                return "", "the previous server is gone"
            if _heartbeat(url):
                return url, ""
            last_error = f"server at {url} not answering"
        except (FileNotFoundError, json.JSONDecodeError, KeyError) as exc:
            last_error = str(exc)
            if not _lock_held(info_path.with_name("chroma.lock")):
                return "", "no server is starting"
        time.sleep(0.1)
    return "", last_error


def _lock_held(lock_path: Path) -> bool:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _alive(pid: int, data_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return str(data_dir).encode() in cmdline


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: if the keeper is SIGKILLed, take the server down too rather than leave
    # an unsupervised process holding the data path.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _keep(data_dir: Path, lock_fd: int) -> int:
    """Run and supervise the server; return when it dies or nobody has used it for a while."""
    db_path, _, users_path, info_path = _paths(data_dir)
    launcher = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"
    command = [sys.executable, "-c", launcher, "run", "--path", str(db_path), "--host", "127.0.0.1"]
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        pass_fds=(lock_fd,),
        preexec_fn=_die_with_parent,
        env=env,
    )
    stop = False

    def on_signal(signum, frame) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    url = f"http://127.0.0.1:{port}"
    while not _heartbeat(url):
        if server.poll() is not None or stop:
            return 1
        time.sleep(0.1)
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "port": port, "path": str(db_path)}))
    tmp.replace(info_path)

    users_fd = os.open(users_path, os.O_RDWR | os.O_CREAT, 0o600)
    idle_since: float | None = None
    try:
        while not stop and server.poll() is None:
            time.sleep(0.5)
            try:
                fcntl.flock(users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                idle_since = None
                continue
            # Nobody uses the server. Keep the exclusive lock while deciding, so a new
            # user waits for a clean stop instead of connecting to a dying server.
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= IDLE_GRACE_SECONDS:
                break
            fcntl.flock(users_fd, fcntl.LOCK_UN)
    finally:
        with contextlib.suppress(FileNotFoundError):
            info_path.unlink()
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        # Free the path before letting waiting users in, or they would find it still taken.
        os.close(lock_fd)
        os.close(users_fd)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Supervise Docent's local Chroma server.")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--lock-fd", required=True, type=int)
    options = parser.parse_args()
    sys.exit(_keep(options.data_dir.resolve(), options.lock_fd))

"""`manage.py serve`: the whole app in one command - web server, ingest worker, Chroma.

Used by `make run`. Each part is its own process; this one supervises them, restarts
a worker that dies, and stops everything on Ctrl-C.

Ingest workers come in two lanes: `--workers` (INGEST_WORKERS, one per two cores) take
both lanes (small files first), and `--small-workers` (INGEST_SMALL_WORKERS) take only
files under INGEST_SMALL_BYTES, so a small upload is indexed at once even while long PDFs
keep the others busy.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def _healthy(host: str, port: int) -> bool:
    """Whether the web process answers GET /healthz with anything but 503 (still loading
    models); a 400 from an ALLOWED_HOSTS that leaves out this address still means it is up."""
    import http.client

    wildcard = {"0.0.0.0", "::", ""}  # noqa: S104 - listening everywhere; we ask loopback
    connection = http.client.HTTPConnection(
        "127.0.0.1" if host in wildcard else host, port, timeout=1
    )
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status != 503
    except OSError:
        return False
    finally:
        connection.close()


class Command(BaseCommand):
    help = "Start Docent (web, worker and local Chroma) until interrupted."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.DOCENT_HOST)
        parser.add_argument("--port", type=int, default=settings.DOCENT_PORT)
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.INGEST_WORKERS,
            help="Ingest workers taking both lanes (INGEST_WORKERS)",
        )
        parser.add_argument(
            "--small-workers",
            type=int,
            default=settings.INGEST_SMALL_WORKERS,
            help="Ingest workers taking only small files (INGEST_SMALL_WORKERS)",
        )

    def handle(
        self, *args, host: str, port: int, workers: int, small_workers: int, **options
    ) -> None:
        call_command("collectstatic", interactive=False, verbosity=0)
        self._first_run_setup()
        if not settings.CHROMA_URL:
            from ingest.chromaserver import ensure_local_server

            # Holding a user lock here keeps the server up between worker restarts.
            ensure_local_server(Path(settings.DATA_DIR))
        web_cmd = [sys.executable, "-m", "uvicorn", "assistant.asgi:application"]
        web_cmd += ["--host", host, "--port", str(port), "--timeout-graceful-shutdown", "5"]
        # The worker that takes long documents yields the CPU to the small lane.
        worker_cmd = [sys.executable, MANAGE, "worker", "--queues", "small,default", "--nice", "10"]
        small_cmd = [sys.executable, MANAGE, "worker", "--queues", "small"]
        commands = [worker_cmd] * max(0, workers) + [small_cmd] * max(0, small_workers)
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        web = subprocess.Popen(web_cmd)
        pool = [subprocess.Popen(command) for command in commands]
        restarts: list[float] = []
        self.stdout.write(
            f"Docent is starting on http://{host}:{port}/ with {workers} ingest worker(s) "
            f"and {small_workers} for small files; "
            f"data in {settings.DATA_DIR}. Loading models…"
        )
        self.stdout.flush()
        started = time.monotonic()
        ready = False
        try:
            while not stopping:
                if not ready and _healthy(host, port):
                    ready = True
                    self.stdout.write(
                        f"Docent is ready at http://{host}:{port}/ "
                        f"({time.monotonic() - started:.0f} s). Press Ctrl-C to stop."
                    )
                    self.stdout.flush()
                time.sleep(0.5 if ready else 1.0)
                if web.poll() is not None:
                    raise CommandError(f"The web server exited with code {web.returncode}.")
                for i, proc in enumerate(pool):
                    if proc.poll() is None:
                        continue
                    restarts = [t for t in restarts if time.monotonic() - t < 60] + [
                        time.monotonic()
                    ]
                    if len(restarts) > 5:
                        raise CommandError("The ingest worker keeps crashing; see the log above.")
                    self.stderr.write(f"Ingest worker exited ({proc.returncode}); restarting.")
                    pool[i] = subprocess.Popen(commands[i])
        finally:
            for proc in [web, *pool]:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for proc in [web, *pool]:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.stdout.write("Docent stopped.")

    def _first_run_setup(self) -> None:
        """A default knowledge base, and an admin account if there is none yet."""
        import secrets

        from django.contrib.auth import get_user_model

        from ingest.services import kb_get_or_create

        kb_get_or_create(name=settings.DEFAULT_KB_NAME)
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", password=password)
        note = Path(settings.DATA_DIR) / "admin-password.txt"
        note.write_text(f"admin\n{password}\n")
        note.chmod(0o600)
        self.stdout.write(
            f"Created the admin account: user 'admin', password {password} "
            f"(also saved in {note}). Change it at /admin/password_change/."
        )

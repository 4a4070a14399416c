"""`make run` (manage.py serve): it says "ready" only once the web process has loaded the
models, so the first question does not pay for them, and it stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.conftest import REPO, free_port, wait_for_line


def test_serve_says_ready_after_the_models_are_loaded_and_stops_on_ctrl_c():
    data = Path(tempfile.mkdtemp(prefix="docent-serve-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "DATABASE_URL"))},
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
        "DOCENT_ENV_FILE": os.devnull,
        "DATA_DIR": str(data),
        "WARM_UP": "true",
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=REPO, check=True, timeout=120)
    serve = subprocess.Popen(
        [*manage, "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = wait_for_line(serve, "Docent is ready", timeout=240)
        loaded = [n for n, line in enumerate(lines) if "Ready for questions: models loaded" in line]
        assert loaded, "\n".join(lines)
        assert any("Chat: no model configured" in line for line in lines)  # which model, once
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
            assert health.status == 200
        serve.send_signal(signal.SIGINT)
        assert "Docent stopped." in serve.communicate(timeout=60)[0]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()

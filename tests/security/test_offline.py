"""Docent makes no outside connection the admin did not configure: not even telemetry.

Every process (web server, worker and its sandboxed extraction child, the Chroma server)
runs with HTTPS_PROXY and HTTP_PROXY pointing at a proxy that records each connection
attempt, and with an audit hook that records every socket connect and name lookup to
anything but loopback. The test ingests a screenshot through OCR and asks a question with
a screenshot, then asserts that neither saw a single attempt.
"""

from __future__ import annotations

import base64
import io
import json
import socketserver
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from assistant.keys import api_key_create
from ingest.services import document_create, kb_get_or_create, kb_update
from tests import factories
from tests.conftest import (
    WorkerProcess,
    free_port,
    subprocess_env,
    uvicorn,
    wait_for_document,
    wait_for_web,
)

pytestmark = pytest.mark.django_db(transaction=True)

AUDIT = """
import ipaddress, os, socket, sys

_log = os.environ["DOCENT_AUDIT_LOG"]

def _outside(host):
    if host in (None, "", "localhost") or str(host).startswith("/"):
        return False
    try:
        return not ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return True  # a name: looking it up is already an outside request

def _hook(event, args):
    if event == "socket.getaddrinfo" and _outside(args[0]):
        target = f"lookup {args[0]}:{args[1]}"
    elif event == "socket.connect" and isinstance(args[1], tuple) and _outside(args[1][0]):
        target = f"connect {args[1][0]}:{args[1][1]}"
    else:
        return
    with open(_log, "a") as fh:
        fh.write(f"{os.getpid()} {target}\\n")

sys.addaudithook(_hook)
"""


class RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP(S) proxy that only writes down who tried to go where, and refuses."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.attempts: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode(errors="replace").strip()
        if line:
            self.server.attempts.append(line)  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def proxy():
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def offline_env(tmp_path: Path, proxy: RecordingProxy, llm_server) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(AUDIT)
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    base = subprocess_env()
    # Only each process's own start-up may turn telemetry off: nothing inherited from here.
    for name in list(base):
        if name.upper() in {
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
        } or name.startswith(
            ("HF_", "TRANSFORMERS_", "ORT_", "ANONYMIZED_", "DO_NOT_TRACK", "POSTHOG")
        ):
            base.pop(name)
    return {
        **base,
        "PYTHONPATH": str(tmp_path),
        "DOCENT_AUDIT_LOG": str(tmp_path / "outside.log"),
        "HTTPS_PROXY": proxy_url,
        "HTTP_PROXY": proxy_url,
        "ALL_PROXY": proxy_url,
        "https_proxy": proxy_url,
        "http_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "LLM_BASE_URL": llm_server.base_url,
        "LLM_API_KEY": "test-key",
        "LLM_MODEL": "ministral-8b-2512",
    }


def test_ocr_ingest_and_a_screenshot_chat_make_no_outside_connection(tmp_path, proxy, llm_server):
    kb_update(kb=kb_get_or_create(name="Offline"), visibility="public")
    env = offline_env(tmp_path, proxy, llm_server)
    port = free_port()
    log = (tmp_path / "web.log").open("w")
    web = uvicorn(port, env, stdout=log, stderr=log)
    worker = WorkerProcess(env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_web(url, web, tmp_path / "web.log")
        worker.start()
        shot = factories.text_image(["SYNC STOPPED", "Error E-42: the token expired"])
        document = document_create(
            kb=kb_get_or_create(name="Offline"), filename="error.png", content=io.BytesIO(shot)
        ).document
        assert wait_for_document(document.pk).status == "ready"  # OCR ran in the worker

        _, token = api_key_create(name="offline", knowledge_bases=[document.kb])
        payload = {"question": "What does this mean?", "images": [base64.b64encode(shot).decode()]}
        request = urllib.request.Request(
            url + "/api/kbs/offline/chat",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
        assert answer["status"] == "complete", answer
        # the screenshot went to the model, and so did the ingested image it matched
        assert llm_server.chat_requests[-1].n_images == 2
        # onnxruntime's uploader starts about 9 s after the OCR engine loads: give any
        # background upload time to try before the processes stop.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not proxy.attempts:
            time.sleep(0.5)
    finally:
        worker.stop()
        web.terminate()
        web.wait(15)
        log.close()
    outside = tmp_path / "outside.log"
    assert proxy.attempts == []
    assert not outside.exists(), outside.read_text()

"""Start-up: the first question is not the one that loads the models, and files stream
under ASGI without Django's "synchronous iterators" warning (warnings are errors here)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.base import ContentFile

from assistant import tools
from assistant.asgi import application
from ingest.models import Document
from ingest.services import document_create, kb_get_or_create
from tests.factories import text_image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cold():
    """This process as if it had just started: the readiness flag unset, restored after."""
    was = tools.warmed.is_set()
    tools.warmed.clear()
    yield
    if was:
        tools.warmed.set()


def test_health_says_503_until_the_models_are_loaded_then_200(client, settings, cold):
    settings.WARM_UP = True
    waiting = client.get("/healthz")
    assert (waiting.status_code, waiting.json()) == (503, {"ready": False})
    parts = tools.chat_tools_warm()
    assert {"embedder", "tokenizer", "question path", "OCR"} <= set(parts)
    ready = client.get("/healthz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_without_warm_up_the_server_is_ready_at_once(client, settings, cold):
    settings.WARM_UP = False
    assert client.get("/healthz").status_code == 200


def asgi_get(path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One GET through the deployed ASGI application, as uvicorn would send it."""
    messages: list[dict] = []
    received = False

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    # A thread of its own: after the browser tests, Playwright's loop lives in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, application(scope, receive, send)).result(timeout=60)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def test_static_files_stream_under_asgi_without_a_warning():
    status, _, body = asgi_get("/static/docent/app.css")
    assert status == 200
    assert b"--" in body and len(body) > 1000  # the whole stylesheet, not a truncated body


def test_uploaded_files_stream_under_asgi_without_a_warning(settings):
    kb = kb_get_or_create(name="Start-up")
    png = text_image(["A screenshot"])
    document = document_create(kb=kb, filename="shot.png", content=ContentFile(png)).document
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("boot", password="x" * 12)
    signed_in = Client()
    signed_in.force_login(admin)
    cookie = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
    status, headers, body = asgi_get(
        f"/documents/{document.pk}/file",
        {"cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
    )
    assert status == 200 and headers["content-type"] == "image/png"
    assert body == png and int(headers["content-length"]) == len(png)
    assert Document.objects.filter(pk=document.pk).exists()

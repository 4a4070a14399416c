"""The chat page and its SSE stream, served by the real ASGI server."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from assistant.models import Message
from ingest.services import kb_get_or_create, kb_update
from standin import Reply

pytestmark = pytest.mark.django_db(transaction=True)


_OPEN: list[httpx.Client] = []  # closed when the test that opened them ends


@pytest.fixture(autouse=True)
def _close_sessions():
    yield
    while _OPEN:
        _OPEN.pop().close()


def open_session(app) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=app.url, timeout=30)
    _OPEN.append(client)
    page = client.get("/")
    assert page.status_code == 200
    token = client.cookies["csrftoken"]
    return client, token


def read_events(response) -> list[tuple[str, dict]]:
    events = []
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[6:])))
    return events


def test_sse_stream_events_and_sanitised_html(live_app, ingest_text):
    kb = kb_update(kb=kb_get_or_create(name="Docs"), visibility="public")
    ingest_text(kb, "faq.md", "# Accounts\n\nPasswords reset from Settings > Security.")
    live_app.llm.script(Reply(text="Use **Settings** [1] <script>alert(1)</script> [7]"))
    client, token = open_session(live_app)
    with client.stream(
        "POST",
        "/chat/stream",
        data={"kb": kb.slug, "question": "How do I reset my password?"},
        headers={"X-CSRFToken": token},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response)
    kinds = [k for k, _ in events]
    assert kinds[0] == "conversation" and kinds[-1] == "done"
    assert kinds.index("sources") < kinds.index("delta")
    final_html = [d["html"] for k, d in events if k == "html"][-1]
    assert "<strong>Settings</strong>" in final_html
    assert '<a class="cite" href="/documents/' in final_html  # [1] links to its source
    assert "[7]" in final_html and "<script>" not in final_html  # no source 7; no raw HTML
    assert "&lt;script&gt;" in final_html


def test_input_errors_are_refused_with_422(live_app):
    kb = kb_update(kb=kb_get_or_create(name="Docs"), visibility="public")
    client, token = open_session(live_app)
    empty = client.post(
        "/chat/stream", data={"kb": kb.slug, "question": " "}, headers={"X-CSRFToken": token}
    )
    assert empty.status_code == 422 and "type a question" in empty.json()["error"]
    bad_image = client.post(
        "/chat/stream",
        data={"kb": kb.slug, "question": "what is this?"},
        files={"images": ("x.png", b"not really a png", "image/png")},
        headers={"X-CSRFToken": token},
    )
    assert bad_image.status_code == 422 and "not an image" in bad_image.json()["error"]
    no_csrf = httpx.post(f"{live_app.url}/chat/stream", data={"kb": kb.slug, "question": "hi"})
    assert no_csrf.status_code == 403


def test_stop_closes_the_model_stream_and_keeps_the_partial_answer(live_app, ingest_text):
    kb = kb_update(kb=kb_get_or_create(name="Docs"), visibility="public")
    ingest_text(kb, "faq.md", "# Accounts\n\nPasswords reset from Settings > Security.")
    live_app.llm.script(Reply(text="slow " * 400, delay_per_token=0.02))
    client, token = open_session(live_app)
    with client.stream(
        "POST",
        "/chat/stream",
        data={"kb": kb.slug, "question": "reset?"},
        headers={"X-CSRFToken": token},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # the user pressed Stop: the browser aborts the request
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reply = Message.objects.filter(role="assistant").first()
        if reply and reply.status != "streaming":
            break
        time.sleep(0.2)
    assert reply.status == "stopped" and reply.content.startswith("slow")
    (request,) = live_app.llm.chat_requests
    deadline = time.monotonic() + 10
    while not request.client_disconnected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert request.client_disconnected and not request.completed  # generation stopped upstream


def test_conversation_continues_and_reloads(live_app, ingest_text):
    kb = kb_update(kb=kb_get_or_create(name="Docs"), visibility="public")
    ingest_text(kb, "faq.md", "# Accounts\n\nPasswords reset from Settings > Security.")
    client, token = open_session(live_app)
    with client.stream(
        "POST",
        "/chat/stream",
        data={"kb": kb.slug, "question": "reset?"},
        headers={"X-CSRFToken": token},
    ) as response:
        conversation = read_events(response)[0][1]["id"]
    page = client.get(f"/?kb={kb.slug}&c={conversation}")
    assert page.status_code == 200 and "reset?" in page.text and 'class="cite"' in page.text
    stranger = httpx.get(f"{live_app.url}/?kb={kb.slug}&c={conversation}")
    assert stranger.status_code == 404  # another browser session cannot read it

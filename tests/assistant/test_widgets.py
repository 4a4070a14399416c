"""Widget security: tokens, origins, CORS, quotas and scope all fail safely."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.core import signing
from django.test import Client

from assistant.models import Conversation, Widget
from ingest.services import kb_get_or_create

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example"


@pytest.fixture
def widget(ingest_text):
    kb = kb_get_or_create(name="Shop help")
    ingest_text(
        kb, "returns.md", "# Returns\n\nReturns are accepted within 30 days with a receipt."
    )
    return Widget.objects.create(
        name="Shop", kb=kb, allowed_origins=f"{SITE}\nhttps://other.example/"
    )


@pytest.fixture
def other_widget(ingest_text):
    kb = kb_get_or_create(name="Internal")
    ingest_text(kb, "salaries.md", "# Salaries\n\nConfidential pay bands.")
    return Widget.objects.create(name="Intranet", kb=kb, allowed_origins=SITE)


def start(client: Client, widget: Widget, origin: str = SITE, visitor: str = ""):
    return client.post(
        f"/widget/api/{widget.public_id}/session",
        data=json.dumps({"visitor": visitor}),
        content_type="application/json",
        HTTP_ORIGIN=origin,
    )


def chat(client: Client, widget: Widget, token: str, origin: str = SITE, **body):
    return client.post(
        f"/widget/api/{widget.public_id}/chat",
        data=json.dumps({"question": "How long do I have to return?", **body}),
        content_type="application/json",
        HTTP_ORIGIN=origin,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_session_only_on_allowed_origins_with_cors_for_them_alone(widget):
    client = Client()
    ok = start(client, widget)
    assert ok.status_code == 200 and ok["Access-Control-Allow-Origin"] == SITE
    body = ok.json()
    assert (
        body["config"]["title"] == "Help" and "token" in body and "api_key" not in json.dumps(body)
    )
    denied = start(client, widget, origin="https://evil.example")
    assert denied.status_code == 403 and "not available" in denied.json()["error"]
    assert "Access-Control-Allow-Origin" not in denied
    assert start(client, widget, origin="").status_code == 403  # no Origin header at all
    preflight = client.options(
        f"/widget/api/{widget.public_id}/chat",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in preflight
    good_preflight = client.options(
        f"/widget/api/{widget.public_id}/chat",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert good_preflight["Access-Control-Allow-Origin"] == SITE
    assert "authorization" in good_preflight["Access-Control-Allow-Headers"]
    # CORS never opens the rest of the site, even to an allowed origin.
    assert "Access-Control-Allow-Origin" not in client.get("/api/openapi.json", HTTP_ORIGIN=SITE)


def test_forged_tampered_and_foreign_tokens_are_refused(widget, other_widget):
    client = Client()
    token = start(client, widget).json()["token"]
    forged = signing.dumps(
        {"w": widget.public_id, "o": SITE, "v": "x"},
        key="not-the-secret",
        salt="docent.widget.session",
    )
    assert chat(client, widget, forged).status_code == 401
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert chat(client, widget, tampered).status_code == 401
    assert chat(client, widget, "").status_code == 401
    # A token for one widget opens nothing of another widget's knowledge base.
    assert chat(client, other_widget, token).status_code == 403
    assert (
        client.get(
            f"/widget/api/{other_widget.public_id}/conversations/00000000-0000-0000-0000-000000000000",
            HTTP_ORIGIN=SITE,
            HTTP_AUTHORIZATION=f"Bearer {token}",
        ).status_code
        == 403
    )


def test_token_from_one_origin_fails_on_another(widget):
    client = Client()
    token = start(client, widget).json()["token"]
    response = chat(client, widget, token, origin="https://other.example")
    assert response.status_code == 403 and "another website" in response.json()["error"]


def test_expired_token_is_refused(widget, settings):
    settings.WIDGET_SESSION_SECONDS = 1
    client = Client()
    token = start(client, widget).json()["token"]
    time.sleep(2.1)
    response = chat(client, widget, token)
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_removing_an_origin_revokes_its_sessions(widget):
    client = Client()
    token = start(client, widget).json()["token"]
    Widget.objects.filter(pk=widget.pk).update(allowed_origins="https://other.example")
    assert chat(client, widget, token).status_code == 403
    Widget.objects.filter(pk=widget.pk).update(enabled=False, allowed_origins=SITE)
    assert chat(client, widget, token).status_code == 404


def test_limits_on_length_and_screenshots(widget):
    Widget.objects.filter(pk=widget.pk).update(max_message_chars=20, accept_screenshots=False)
    client = Client()
    token = start(client, widget).json()["token"]
    too_long = chat(client, widget, token, question="x" * 21)
    assert too_long.status_code == 422 and "under 20 characters" in too_long.json()["error"]
    shot = chat(client, widget, token, question="what?", images=["data:image/png;base64,AAAA"])
    assert shot.status_code == 422 and shot.json()["error"] == "Screenshots are not accepted here."


def test_visitor_and_ip_quotas_answer_429_with_retry_after(live_app, widget):
    Widget.objects.filter(pk=widget.pk).update(daily_quota_per_visitor=1, daily_quota_per_ip=2)
    url = f"{live_app.url}/widget/api/{widget.public_id}"
    with httpx.Client(timeout=30, headers={"Origin": SITE}) as client:

        def new_session(visitor: str = "") -> dict:
            return client.post(f"{url}/session", json={"visitor": visitor}).json()

        def ask(token: str) -> httpx.Response:
            with client.stream(
                "POST",
                f"{url}/chat",
                json={"question": "Returns?"},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                response.read()
                return response

        first = new_session()
        assert ask(first["token"]).status_code == 200
        again = ask(new_session(first["visitor"])["token"])  # same visitor, new token
        assert again.status_code == 429
        assert 0 < int(again.headers["Retry-After"]) <= 86_400
        assert again.headers["Access-Control-Allow-Origin"] == SITE
        assert "Retry-After" in again.headers["Access-Control-Expose-Headers"]
        assert ask(new_session()["token"]).status_code == 200  # a second visitor on the same IP
        assert ask(new_session()["token"]).status_code == 429  # the IP's quota is spent


def test_widget_conversations_and_citations_stay_with_their_visitor(live_app, widget):
    url = f"{live_app.url}/widget/api/{widget.public_id}"
    with httpx.Client(timeout=30, headers={"Origin": SITE}) as client:
        mine = client.post(f"{url}/session", json={}).json()["token"]
        theirs = client.post(f"{url}/session", json={}).json()["token"]
        events = []
        with client.stream(
            "POST",
            f"{url}/chat",
            json={"question": "Returns?"},
            headers={"Authorization": f"Bearer {mine}"},
        ) as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        conversation = next(d for k, d in events if k == "conversation")["id"]
        source = next(d for k, d in events if k == "sources")["sources"][0]
        assert source["url"].startswith(f"{live_app.url}/widget/{widget.public_id}/cite/")
        assert mine not in source["url"]  # no session token in a URL (logs, history)
        page = httpx.get(source["url"])  # the citation link opens for the visitor...
        assert page.status_code == 200 and "30 days" in page.text
        forged_link = source["url"].replace("/cite/", "/cite/x")
        assert httpx.get(forged_link).status_code == 404  # ...but not a forged one
        restored = client.get(
            f"{url}/conversations/{conversation}", headers={"Authorization": f"Bearer {mine}"}
        )
        assert restored.status_code == 200 and [m["role"] for m in restored.json()["messages"]] == [
            "user",
            "assistant",
        ]
        stolen = client.get(
            f"{url}/conversations/{conversation}", headers={"Authorization": f"Bearer {theirs}"}
        )
        assert stolen.status_code == 404
        hijack = client.post(
            f"{url}/chat",
            json={"question": "more?", "conversation": conversation},
            headers={"Authorization": f"Bearer {theirs}"},
        )
        assert hijack.status_code == 404
    assert Conversation.objects.get().owner_key.startswith(f"widget:{widget.pk}:")


def test_widget_script_is_small_and_needs_no_framework():
    import gzip

    from tests.conftest import REPO

    source = (REPO / "static/docent/widget.js").read_bytes()
    assert len(gzip.compress(source)) < 30 * 1024
    assert b"import " not in source and b"require(" not in source


def test_a_reasoning_trace_never_reaches_a_widget_visitor(live_app, widget):
    from standin import Reply

    live_app.llm.script(Reply(text="Within 30 days [1].", reasoning="PRIVATE TRACE about policy"))
    url = f"{live_app.url}/widget/api/{widget.public_id}"
    with httpx.Client(timeout=30, headers={"Origin": SITE}) as client:
        token = client.post(f"{url}/session", json={}).json()["token"]
        body = client.post(
            f"{url}/chat",
            json={"question": "Returns?"},
            headers={"Authorization": f"Bearer {token}"},
        ).text
    assert "Within 30 days" in body
    assert "PRIVATE TRACE" not in body and "event: reasoning" not in body

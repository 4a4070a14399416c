"""Widget security: tokens, origins, CORS, quotas and scope all fail safely."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.core import signing
from django.test import Client

from assistant.models import Conversation, Feedback, Message, Widget
from assistant.widgets import WidgetSession, citation_link, session_verify
from ingest.models import Chunk
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


# --- feedback ----------------------------------------------------------------------------------


def visitor_answer(widget: Widget, token: str, text: str = "Within 30 days [1].") -> Message:
    """An answer in the conversation of the visitor holding `token`, as the widget saves it."""
    session = session_verify(widget=widget, token=token, origin=SITE)
    conversation = Conversation.objects.create(kb=widget.kb, owner_key=session.owner_key)
    Message.objects.create(conversation=conversation, role="user", content="Returns?")
    return Message.objects.create(conversation=conversation, role="assistant", content=text)


def rate(client: Client, widget: Widget, token: str, message: Message, rating, origin=SITE):
    return client.post(
        f"/widget/api/{widget.public_id}/messages/{message.pk}/feedback",
        data=json.dumps({"rating": rating}),
        content_type="application/json",
        HTTP_ORIGIN=origin,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_a_visitor_rates_their_own_answer_and_can_change_the_vote(widget):
    client = Client(enforce_csrf_checks=True)  # a cross-origin page has no CSRF cookie
    token = start(client, widget).json()["token"]
    answer = visitor_answer(widget, token)
    up = rate(client, widget, token, answer, 1)
    assert up.status_code == 200 and up.json() == {"message_id": answer.pk, "rating": 1}
    assert up["Access-Control-Allow-Origin"] == SITE
    assert rate(client, widget, token, answer, -1).json()["rating"] == -1
    feedback = Feedback.objects.get()  # changed, not a second vote
    assert feedback.rating == -1 and feedback.owner_key.startswith(f"widget:{widget.pk}:")
    bad = rate(client, widget, token, answer, 5)
    assert bad.status_code == 422 and "Rating must be" in bad.json()["error"]
    restored = client.get(
        f"/widget/api/{widget.public_id}/conversations/{answer.conversation.uid}",
        HTTP_ORIGIN=SITE,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    ).json()["messages"]
    assert [(m["role"], m.get("rating")) for m in restored] == [("user", None), ("assistant", -1)]
    assert restored[1]["id"] == answer.pk and restored[1]["status"] == "complete"


def test_a_visitor_cannot_rate_another_visitors_answer(widget, other_widget):
    client = Client()
    mine = start(client, widget).json()["token"]
    theirs = start(client, widget).json()["token"]
    their_answer = visitor_answer(widget, theirs)
    refused = rate(client, widget, mine, their_answer, -1)
    assert refused.status_code == 404 and refused.json()["error"] == "No such answer."
    # Nor a question, nor an answer in another widget's knowledge base, nor a staff chat.
    question = their_answer.conversation.messages.get(role="user")
    assert rate(client, widget, theirs, question, 1).status_code == 422
    elsewhere_token = start(client, other_widget).json()["token"]
    elsewhere = visitor_answer(other_widget, elsewhere_token)
    assert rate(client, widget, mine, elsewhere, 1).status_code == 404
    assert rate(client, other_widget, mine, elsewhere, 1).status_code == 403
    page_chat = Conversation.objects.create(kb=widget.kb, owner_key="session:abc")
    staff_answer = Message.objects.create(conversation=page_chat, role="assistant", content="x")
    assert rate(client, widget, mine, staff_answer, 1).status_code == 404
    assert not Feedback.objects.exists()


def test_a_forged_or_foreign_origin_token_cannot_rate(widget):
    client = Client()
    token = start(client, widget).json()["token"]
    answer = visitor_answer(widget, token)
    owner = Conversation.objects.get().owner_key.rsplit(":", 1)[1]
    forged = signing.dumps(
        {"w": widget.public_id, "o": SITE, "v": owner, "q": owner},
        key="not-the-secret",
        salt="docent.widget.session",
    )
    assert rate(client, widget, forged, answer, 1).status_code == 401
    assert rate(client, widget, "", answer, 1).status_code == 401
    wrong_site = rate(client, widget, token, answer, 1, origin="https://other.example")
    assert wrong_site.status_code == 403
    assert not Feedback.objects.exists()


# --- citation pages ----------------------------------------------------------------------------


def test_a_cited_source_opens_as_a_clean_page_in_the_widgets_look(widget):
    Widget.objects.filter(pk=widget.pk).update(title="Shop assistant", color="#aa3300")
    widget.refresh_from_db()
    chunk = Chunk.objects.get(document__kb=widget.kb)
    session = WidgetSession(widget, SITE, "visitor")
    source = {"document_id": chunk.document_id, "pages": [], "chunk_ids": [chunk.pk]}
    page = Client().get(citation_link(session=session, source=source))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sign in" not in html and "<nav" not in html and "topbar" not in html
    assert "/accounts/login/" not in html and "/admin/" not in html
    assert 'class="doc-title">returns.md<' in html
    assert "<mark>Returns are accepted within 30 days with a receipt.</mark>" in html
    assert "Shop assistant" in html and 'data-accent="#aa3300"' in html
    chunk.document.delete()
    gone = Client().get(citation_link(session=session, source=source))
    assert gone.status_code == 404 and "This document is gone" in gone.content.decode()
    assert "Sign in" not in gone.content.decode() and "Shop assistant" in gone.content.decode()


# --- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(widget):
    from django.contrib.auth import get_user_model

    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(boss)
    return client


def widget_form(widget: Widget, **changes) -> dict:
    fields = {
        "name": "Shop",
        "kb": widget.kb_id,
        "enabled": "on",
        "allowed_origins": "https://shop.example",
        "title": "Help",
        "greeting": "Hi!",
        "starter_questions": "",
        "color": "#3056d3",
        "position": "bottom-right",
        "accept_screenshots": "on",
        "daily_quota_per_visitor": 50,
        "daily_quota_per_ip": 300,
        "max_message_chars": 1000,
    }
    return {**fields, **changes}


def test_the_admin_refuses_a_bad_origin_with_a_hint_and_saves_good_ones_normalised(
    widget, admin_client
):
    url = f"/admin/assistant/widget/{widget.pk}/change/"
    bad = admin_client.post(
        url, widget_form(widget, allowed_origins="https://shop.example\n127.0.0.2:8099")
    )
    assert bad.status_code == 200
    assert "127.0.0.2:8099 needs a scheme: did you mean http://127.0.0.2:8099?" in (
        bad.content.decode()
    )
    widget.refresh_from_db()
    assert widget.allowed_origins == f"{SITE}\nhttps://other.example/"  # unchanged
    messy = "HTTPS://Shop.Example:443/\nhttp://127.0.0.2:8099\nhttps://shop.example"
    saved = admin_client.post(url, widget_form(widget, allowed_origins=messy, color="#AA3300"))
    assert saved.status_code == 302
    widget.refresh_from_db()
    assert widget.allowed_origins == "https://shop.example\nhttp://127.0.0.2:8099"
    assert widget.color == "#aa3300"
    # The browser's Origin for the saved line is let in.
    assert start(Client(), widget, origin="http://127.0.0.2:8099").status_code == 200


def test_the_admin_colour_is_a_picker_and_must_be_rrggbb(widget, admin_client):
    url = f"/admin/assistant/widget/{widget.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'type="color"' in page and 'name="color"' in page
    assert 'data-preview="docent-widget-preview"' in page and "widget_admin.js" in page
    assert f'data-widget="{widget.public_id}"' in page
    refused = admin_client.post(url, widget_form(widget, color="red"))
    assert refused.status_code == 200 and "Use a colour like #3056d3." in refused.content.decode()
    new = admin_client.get("/admin/assistant/widget/add/").content.decode()
    assert "(given when you save)" in new and "works after that" in new
    assert "Public id" not in new  # a default shown before saving is not the id saved


def test_the_model_check_normalises_origins_like_the_admin(widget):
    from django.core.exceptions import ValidationError

    widget.allowed_origins = "https://Shop.example:443/"
    widget.full_clean()
    assert widget.allowed_origins == "https://shop.example"
    widget.allowed_origins = "shop.example"
    with pytest.raises(ValidationError) as caught:
        widget.full_clean()
    assert "did you mean https://shop.example?" in caught.value.message_dict["allowed_origins"][0]

"""CSRF: every state change made with a session cookie needs the CSRF token; tokens don't.

Session-authenticated endpoints are tried with django.test.Client(enforce_csrf_checks=True):
without a token, with a wrong one, with another session's token, and with a valid token from
a foreign Origin; each must answer 403 and change nothing. The same request with a valid
token then succeeds, so the refusal is the CSRF check and nothing else. API keys and widget
tokens need no CSRF token, and a session cookie is never accepted in place of them. The last
test repeats the key cases over real HTTP against the ASGI app.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from assistant.keys import api_key_create
from assistant.models import ApiKey, Conversation, Message, Widget
from assistant.widgets import session_start
from ingest.models import Document, KnowledgeBase
from ingest.services import document_create, kb_get_or_create, kb_update

from .support import EVIL_SITE, SITE, body_of, db_fingerprint

pytestmark = pytest.mark.django_db(transaction=True)


class Setup:
    def __init__(self) -> None:
        User = get_user_model()
        self.user = User.objects.create_user("member", password="pw-member-123")
        self.admin = User.objects.create_user(
            "boss", password="pw-boss-123", is_staff=True, is_superuser=True
        )
        self.kb = kb_update(kb=kb_get_or_create(name="Alpha Desk"), visibility="members")
        self.kb.members.set([self.user])
        self.doc = document_create(
            kb=self.kb,
            filename="guide.md",
            content=ContentFile(b"# Guide\n\nHold the pin for ten seconds."),
            enqueue=False,
        ).document
        Document.objects.filter(pk=self.doc.pk).update(status="ready", stage="ready")
        self.conversation = Conversation.objects.create(
            kb=self.kb, user=self.user, title="my question"
        )
        Message.objects.create(conversation=self.conversation, role="user", content="q")
        self.answer = Message.objects.create(
            conversation=self.conversation, role="assistant", content="a [1]"
        )
        self.widget = Widget.objects.create(name="Help", kb=self.kb, allowed_origins=SITE)
        self.read_key, self.read_token = api_key_create(name="r", knowledge_bases=[self.kb])
        self.write_key, self.write_token = api_key_create(
            name="w", knowledge_bases=[self.kb], can_write=True
        )


@pytest.fixture
def s(transactional_db, llm_server) -> Setup:
    return Setup()


def csrf_client(user=None) -> tuple[Client, str]:
    """A browser-like client that enforces CSRF, signed in as `user`, and its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    assert client.get("/accounts/login/").status_code == 200  # sets the csrftoken cookie
    return client, client.cookies["csrftoken"].value


def signed_in(client: Client) -> bool:
    return bool(client.session.get("_auth_user_id"))


@dataclass(frozen=True)
class Case:
    name: str
    who: str  # user | admin | anon
    method: str
    path: Callable[[Setup], str]
    body: Callable[[Setup], tuple[str, object]]
    ok: int  # status once the CSRF token is right


def form(make):
    return lambda s: ("form", make(s))


def as_json(make):
    return lambda s: ("json", make(s))


def upload_body(s):
    return "form", {
        "files": [SimpleUploadedFile("new.md", b"# New\n\nfresh text", "text/markdown")]
    }


def nothing(s):
    return None, None


# fmt: off
CASES = [
    Case("chat stream",           "user",  "post",   lambda s: "/chat/stream",                        form(lambda s: {"kb": s.kb.slug, "question": "How do I reset it?"}), 200),
    Case("answer feedback",       "user",  "post",   lambda s: f"/messages/{s.answer.pk}/feedback",   form(lambda s: {"rating": "-1", "comment": "bad"}), 200),
    Case("KB create form",        "admin", "post",   lambda s: "/kbs/",                               form(lambda s: {"name": "Created", "visibility": "public"}), 302),
    Case("KB settings form",      "admin", "post",   lambda s: f"/kb/{s.kb.slug}/settings/",          form(lambda s: {"name": "Renamed", "visibility": "public", "members": []}), 302),
    Case("KB delete form",        "admin", "post",   lambda s: f"/kb/{s.kb.slug}/settings/",          form(lambda s: {"action": "delete", "confirm": s.kb.name}), 302),
    Case("admin delete KB",       "admin", "post",   lambda s: f"/admin/ingest/knowledgebase/{s.kb.pk}/delete/", form(lambda s: {"post": "yes"}), 302),
    Case("logout",                "user",  "post",   lambda s: "/accounts/logout/",                   form(lambda s: {}), 302),
    Case("login",                 "anon",  "post",   lambda s: "/accounts/login/",                    form(lambda s: {"username": "member", "password": "pw-member-123"}), 302),
    Case("password change",       "user",  "post",   lambda s: "/accounts/password/change/",          form(lambda s: {"old_password": "pw-member-123", "new_password1": "lantern river 77", "new_password2": "lantern river 77"}), 302),
    Case("password reset request", "anon", "post",   lambda s: "/accounts/password/reset/",           form(lambda s: {"email": "member@example.com"}), 302),
    Case("API create KB",         "admin", "post",   lambda s: "/api/kbs",                            as_json(lambda s: {"name": "Created"}), 201),
    Case("API rename KB",         "admin", "patch",  lambda s: f"/api/kbs/{s.kb.slug}",               as_json(lambda s: {"name": "Renamed", "visibility": "public"}), 200),
    Case("API delete KB",         "admin", "delete", lambda s: f"/api/kbs/{s.kb.slug}",               nothing, 204),
    Case("API upload",            "admin", "post",   lambda s: f"/api/kbs/{s.kb.slug}/documents",     upload_body, 201),
    Case("API delete document",   "admin", "delete", lambda s: f"/api/documents/{s.doc.pk}",          nothing, 204),
    Case("API reindex document",  "admin", "post",   lambda s: f"/api/documents/{s.doc.pk}/reindex",  nothing, 202),
    Case("API chat",              "user",  "post",   lambda s: f"/api/kbs/{s.kb.slug}/chat",          as_json(lambda s: {"question": "How do I reset it?"}), 200),
    Case("API feedback",          "user",  "post",   lambda s: f"/api/messages/{s.answer.pk}/feedback", as_json(lambda s: {"rating": -1}), 200),
]
# fmt: on


def send(client: Client, case: Case, s: Setup, **headers):
    kind, data = case.body(s)
    method = getattr(client, case.method)
    path = case.path(s)
    if kind == "json":
        return method(path, data=json.dumps(data), content_type="application/json", **headers)
    if kind == "form":
        return method(path, data, **headers)
    return method(path, **headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_session_writes_need_a_valid_csrf_token(s, case):
    who = {"user": s.user, "admin": s.admin, "anon": None}[case.who]
    client, token = csrf_client(who)
    _, foreign_token = csrf_client(who)  # a token from another browser session
    attempts = {
        "no token": {},
        "wrong token": {"HTTP_X_CSRFTOKEN": secrets.token_urlsafe(48)[:64]},
        "another session's token": {"HTTP_X_CSRFTOKEN": foreign_token},
        "valid token, foreign Origin": {"HTTP_X_CSRFTOKEN": token, "HTTP_ORIGIN": EVIL_SITE},
    }
    for attempt, headers in attempts.items():
        before, was_signed_in = db_fingerprint(), signed_in(client)
        response = send(client, case, s, **headers)
        assert response.status_code == 403, (attempt, response.status_code, body_of(response))
        assert db_fingerprint() == before, f"{attempt}: refused, yet the database changed"
        assert signed_in(client) == was_signed_in, f"{attempt}: the sign-in state changed"
    response = send(client, case, s, HTTP_X_CSRFTOKEN=token)
    body_of(response)
    assert response.status_code == case.ok, response.status_code


def test_logout_by_get_is_refused(s):
    client, _ = csrf_client(s.user)
    assert client.get("/accounts/logout/").status_code == 405
    assert signed_in(client)


def test_api_keys_need_no_csrf_token(s):
    client = Client(enforce_csrf_checks=True)
    write = {"HTTP_AUTHORIZATION": f"Bearer {s.write_token}"}
    upload = SimpleUploadedFile("by-key.md", b"# Key\n\nuploaded by a key", "text/markdown")
    created = client.post(f"/api/kbs/{s.kb.slug}/documents", {"files": [upload]}, **write)
    assert created.status_code == 201, created.content
    assert client.post(f"/api/documents/{s.doc.pk}/reindex", **write).status_code == 202
    new_id = created.json()[0]["document"]["id"]
    assert client.delete(f"/api/documents/{new_id}", **write).status_code == 204
    chat = client.post(
        f"/api/kbs/{s.kb.slug}/chat",
        data=json.dumps({"question": "How do I reset it?"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {s.read_token}",
    )
    assert chat.status_code == 200, chat.content


def test_widget_token_needs_no_csrf_token(s):
    client = Client(enforce_csrf_checks=True)
    started = client.post(
        f"/widget/api/{s.widget.public_id}/session",
        data="{}",
        content_type="application/json",
        HTTP_ORIGIN=SITE,
    )
    assert started.status_code == 200
    chat = client.post(
        f"/widget/api/{s.widget.public_id}/chat",
        data=json.dumps({"question": "How do I reset it?"}),
        content_type="application/json",
        HTTP_ORIGIN=SITE,
        HTTP_AUTHORIZATION=f"Bearer {started.json()['token']}",
    )
    assert chat.status_code == 200
    body_of(chat)


def test_a_session_cookie_is_no_substitute_for_a_widget_token(s):
    """A signed-in superuser's cookie (and CSRF token) gets nothing from the widget API."""
    client, token = csrf_client(s.admin)
    _, visitor = session_start(widget=s.widget, origin=SITE, ip="127.0.0.1")
    conversation = Conversation.objects.create(kb=s.kb, owner_key="x", title="t")
    csrf = {"HTTP_X_CSRFTOKEN": token, "HTTP_ORIGIN": SITE}
    before = db_fingerprint()
    chat = client.post(
        f"/widget/api/{s.widget.public_id}/chat",
        data=json.dumps({"question": "How do I reset it?", "visitor": visitor}),
        content_type="application/json",
        **csrf,
    )
    assert chat.status_code == 401
    fetched = client.get(
        f"/widget/api/{s.widget.public_id}/conversations/{conversation.uid}", **csrf
    )
    assert fetched.status_code == 401
    document = client.get(f"/widget/{s.widget.public_id}/cite/not-a-signed-link/")
    assert document.status_code == 404
    assert db_fingerprint() == before


def test_a_session_cookie_does_not_widen_an_api_key(s):
    """With a key in the request, the key decides, whatever session cookie comes with it."""
    client, token = csrf_client(s.admin)
    read = {"HTTP_AUTHORIZATION": f"Bearer {s.read_token}", "HTTP_X_CSRFTOKEN": token}
    before = db_fingerprint()
    upload = SimpleUploadedFile("x.md", b"# X\n\nx", "text/markdown")
    assert (
        client.post(f"/api/kbs/{s.kb.slug}/documents", {"files": [upload]}, **read).status_code
        == 403
    )
    assert client.delete(f"/api/documents/{s.doc.pk}", **read).status_code == 403
    created = client.post(
        "/api/kbs", data=json.dumps({"name": "Via key"}), content_type="application/json", **read
    )
    assert created.status_code == 403
    assert db_fingerprint() == before


@pytest.mark.parametrize("bearer", ["dk_bogus_token", "revoked", "not-a-key"])
def test_a_bad_key_does_not_skip_the_csrf_check_of_the_session(s, bearer):
    """A forged page can't dodge CSRF by adding an Authorization header the API rejects."""
    if bearer == "revoked":
        ApiKey.objects.filter(pk=s.write_key.pk).update(revoked=True)
        bearer = s.write_token
    client, _ = csrf_client(s.admin)
    before = db_fingerprint()
    response = client.post(
        "/api/kbs",
        data=json.dumps({"name": "Forged"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bearer}",
    )
    assert response.status_code in (401, 403), response.status_code
    assert not KnowledgeBase.objects.filter(name="Forged").exists()
    assert db_fingerprint() == before


def test_no_cross_origin_reads_with_cookies(s):
    """CORS is granted to the widget API only, to its listed origins, never with credentials."""
    client, _ = csrf_client(s.admin)
    for path in ("/api/kbs", f"/documents/{s.doc.pk}/", "/"):
        response = client.get(path, HTTP_ORIGIN=EVIL_SITE)
        assert "Access-Control-Allow-Origin" not in response, path
        preflight = client.options(
            path, HTTP_ORIGIN=SITE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert "Access-Control-Allow-Origin" not in preflight, path
    widget = client.options(
        f"/widget/api/{s.widget.public_id}/chat",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert widget["Access-Control-Allow-Origin"] == SITE
    assert "Access-Control-Allow-Credentials" not in widget
    foreign = client.options(
        f"/widget/api/{s.widget.public_id}/chat",
        HTTP_ORIGIN=EVIL_SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in foreign


def test_over_real_http(live_app):
    """The same rules through uvicorn, the middleware stack and real cookies."""
    s = Setup()
    with httpx.Client(base_url=live_app.url, timeout=30) as browser:
        login = browser.get("/accounts/login/")
        token = browser.cookies["csrftoken"]
        refused = browser.post(
            "/accounts/login/", data={"username": "boss", "password": "pw-boss-123"}
        )
        assert refused.status_code == 403 and "sessionid" not in browser.cookies
        signed = browser.post(
            "/accounts/login/",
            data={"username": "boss", "password": "pw-boss-123"},
            headers={"X-CSRFToken": token},
        )
        assert login.status_code == 200 and signed.status_code == 302
        assert browser.get("/kbs/").status_code == 200  # signed in as staff
        before = db_fingerprint()
        forged = {
            "/chat/stream": {"kb": s.kb.slug, "question": "hi"},
            f"/messages/{s.answer.pk}/feedback": {"rating": "1"},
            f"/kb/{s.kb.slug}/settings/": {"action": "delete", "confirm": s.kb.name},
            "/kbs/": {"name": "Forged", "visibility": "public"},
            "/accounts/logout/": {},
        }
        for path, data in forged.items():
            assert browser.post(path, data=data).status_code == 403, path
        for method in ("POST", "PATCH", "DELETE"):
            path = "/api/kbs" if method == "POST" else f"/api/kbs/{s.kb.slug}"
            response = browser.request(method, path, json={"name": "Forged"})
            assert response.status_code == 403, (method, response.text)
        assert db_fingerprint() == before
        assert browser.get("/kbs/").status_code == 200  # still signed in
        token = browser.cookies["csrftoken"]
        out = browser.post("/accounts/logout/", headers={"X-CSRFToken": token})
        assert out.status_code == 302
        assert browser.get("/kbs/").status_code == 302  # signed out now
    key = httpx.post(
        f"{live_app.url}/api/kbs/{s.kb.slug}/documents",
        files={"files": ("k.md", b"# K\n\nby key", "text/markdown")},
        headers={"Authorization": f"Bearer {s.write_token}"},
    )
    assert key.status_code == 201, key.text

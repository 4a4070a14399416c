"""The REST API: every endpoint, its authentication, and knowledge-base scope."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from assistant.keys import api_key_create
from assistant.models import Conversation, Message
from ingest.models import Document, KnowledgeBase
from ingest.services import kb_get_or_create, kb_update
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
GUIDE = "# Guide\n\nThe widget resets when you hold the power button for ten seconds."


@pytest.fixture
def kbs(ingest_text):
    a = kb_get_or_create(name="Alpha")
    b = kb_get_or_create(name="Beta")
    ingest_text(a, "guide.md", GUIDE)
    ingest_text(b, "secret.md", "# Secret\n\nThe vault code is in the beta handbook.")
    return a, b


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def keys(kbs):
    a, _ = kbs
    _, read = api_key_create(name="reader", knowledge_bases=[a])
    _, write = api_key_create(name="writer", knowledge_bases=[a], can_write=True)
    return read, write


def post_json(client, path, data, **extra):
    return client.post(path, data=json.dumps(data), content_type="application/json", **extra)


ENDPOINTS = [
    ("get", "/api/kbs"),
    ("post", "/api/kbs"),
    ("get", "/api/kbs/alpha"),
    ("patch", "/api/kbs/alpha"),
    ("delete", "/api/kbs/alpha"),
    ("get", "/api/kbs/alpha/documents"),
    ("post", "/api/kbs/alpha/documents"),
    ("get", "/api/documents/1"),
    ("delete", "/api/documents/1"),
    ("post", "/api/documents/1/reindex"),
    ("get", "/api/documents/1/chunks"),
    ("post", "/api/kbs/alpha/chat"),
    ("get", "/api/kbs/alpha/conversations"),
    ("get", "/api/conversations/00000000-0000-0000-0000-000000000000"),
    ("post", "/api/messages/1/feedback"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_anonymous_and_bad_keys(kbs, method, path):
    client = Client()
    assert getattr(client, method)(path).status_code == 401
    assert getattr(client, method)(path, **bearer("dk_nope_bad")).status_code == 401


def test_openapi_schema_is_served(client):
    schema = client.get("/api/openapi.json").json()
    assert schema["info"]["title"] == "Docent API"
    assert {"/api/kbs", "/api/kbs/{slug}/chat", "/api/kbs/{slug}/documents"} <= set(schema["paths"])


def test_key_sees_only_its_knowledge_bases(kbs, keys):
    read, _ = keys
    client = Client()
    assert [kb["slug"] for kb in client.get("/api/kbs", **bearer(read)).json()] == ["alpha"]
    assert client.get("/api/kbs/alpha", **bearer(read)).status_code == 200
    for path in ("/api/kbs/beta", "/api/kbs/beta/documents", "/api/kbs/beta/conversations"):
        assert client.get(path, **bearer(read)).status_code == 404
    beta_doc = Document.objects.get(kb__slug="beta")
    assert client.get(f"/api/documents/{beta_doc.pk}", **bearer(read)).status_code == 404
    chat = post_json(client, "/api/kbs/beta/chat", {"question": "vault code?"}, **bearer(read))
    assert chat.status_code == 404


def test_read_only_key_cannot_write(kbs, keys):
    read, _ = keys
    client = Client()
    doc = Document.objects.get(kb__slug="alpha")
    upload = client.post("/api/kbs/alpha/documents", {"files": io.BytesIO(b"x")}, **bearer(read))
    assert upload.status_code == 403
    assert client.delete(f"/api/documents/{doc.pk}", **bearer(read)).status_code == 403
    assert client.post(f"/api/documents/{doc.pk}/reindex", **bearer(read)).status_code == 403
    assert client.get("/api/kbs/alpha/documents", **bearer(read)).status_code == 200  # reading
    assert post_json(client, "/api/kbs", {"name": "New"}, **bearer(read)).status_code == 403
    assert client.delete("/api/kbs/alpha", **bearer(read)).status_code == 403


def test_write_key_manages_documents(kbs, keys, store):
    _, write = keys
    client = Client()
    upload = io.BytesIO(b"# Extra\n\nMore text.")
    upload.name = "extra.md"
    created = client.post("/api/kbs/alpha/documents", {"files": [upload]}, **bearer(write))
    assert created.status_code == 201
    (result,) = created.json()
    assert result["created"] and result["document"]["status"] == "queued"
    doc_id = result["document"]["id"]
    listing = client.get("/api/kbs/alpha/documents?status=queued", **bearer(write)).json()
    assert [d["id"] for d in listing["items"]] == [doc_id] and listing["total"] == 1
    assert client.get(f"/api/documents/{doc_id}", **bearer(write)).json()["filename"] == "extra.md"
    assert (
        client.post(f"/api/documents/{doc_id}/reindex", **bearer(write)).status_code == 409
    )  # queued already
    ready = Document.objects.get(kb__slug="alpha", filename="guide.md")
    chunks = client.get(f"/api/documents/{ready.pk}/chunks", **bearer(write)).json()
    assert chunks[0]["text"].startswith("The widget resets")
    assert client.post(f"/api/documents/{ready.pk}/reindex", **bearer(write)).status_code == 202
    assert client.delete(f"/api/documents/{doc_id}", **bearer(write)).status_code == 204
    assert not Document.objects.filter(pk=doc_id).exists()
    assert (
        post_json(client, "/api/kbs", {"name": "Nope"}, **bearer(write)).status_code == 403
    )  # staff only


def test_chat_conversations_and_feedback_through_a_key(kbs, keys, llm_server):
    read, write = keys
    client = Client()
    first = post_json(
        client, "/api/kbs/alpha/chat", {"question": "How do I reset the widget?"}, **bearer(read)
    )
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["status"] == "complete" and "[1]" in body["answer"]
    assert body["sources"][0]["document"] == "guide.md" and body["prompt_tokens"] > 0
    shot = base64.b64encode(factories.text_image(["Widget error 7"])).decode()
    follow = post_json(
        client,
        "/api/kbs/alpha/chat",
        {"question": "And this?", "conversation": body["conversation"], "images": [shot]},
        **bearer(read),
    )
    assert follow.status_code == 200 and follow.json()["conversation"] == body["conversation"]
    assert llm_server.chat_requests[-1].n_images == 1
    mine = client.get("/api/kbs/alpha/conversations", **bearer(read)).json()
    assert [c["id"] for c in mine] == [body["conversation"]]
    assert (
        client.get("/api/kbs/alpha/conversations", **bearer(write)).json() == []
    )  # not the other key's
    detail = client.get(f"/api/conversations/{body['conversation']}", **bearer(read)).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 2
    assert (
        client.get(f"/api/conversations/{body['conversation']}", **bearer(write)).status_code == 404
    )
    rated = post_json(
        client,
        f"/api/messages/{body['message_id']}/feedback",
        {"rating": -1, "comment": "vague"},
        **bearer(read),
    )
    assert rated.json() == {"message_id": body["message_id"], "rating": -1, "comment": "vague"}
    assert (
        post_json(
            client, f"/api/messages/{body['message_id']}/feedback", {"rating": 5}, **bearer(read)
        ).status_code
        == 422
    )
    assert (
        post_json(
            client, f"/api/messages/{body['message_id']}/feedback", {"rating": 1}, **bearer(write)
        ).status_code
        == 404
    )
    bad = post_json(client, "/api/kbs/alpha/chat", {"question": " "}, **bearer(read))
    assert bad.status_code == 422
    other = post_json(
        client,
        "/api/kbs/alpha/chat",
        {"question": "x", "conversation": body["conversation"]},
        **bearer(write),
    )
    assert other.status_code == 404


def test_revoked_key_is_refused(kbs, keys):
    read, _ = keys
    from assistant.models import ApiKey

    ApiKey.objects.update(revoked=True)
    assert Client().get("/api/kbs", **bearer(read)).status_code == 401


def test_staff_session_manages_knowledge_bases_with_csrf(kbs, staff_user, store):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert post_json(client, "/api/kbs", {"name": "Gamma"}).status_code == 403  # no CSRF token
    client.get("/")  # sets the csrftoken cookie
    token = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    created = post_json(client, "/api/kbs", {"name": "Gamma", "description": "third"}, **token)
    assert created.status_code == 201 and created.json()["slug"] == "gamma"
    assert post_json(client, "/api/kbs", {"name": "gamma"}, **token).status_code == 409
    patched = client.patch(
        "/api/kbs/gamma",
        data=json.dumps({"name": "Gamma Two", "retrieval_budget": 64000, "visibility": "public"}),
        content_type="application/json",
        **token,
    )
    assert patched.status_code == 200 and patched.json()["name"] == "Gamma Two"
    assert KnowledgeBase.objects.get(slug="gamma").retrieval_budget == 64000
    bad = client.patch(
        "/api/kbs/gamma",
        data=json.dumps({"retrieval_budget": 10}),
        content_type="application/json",
        **token,
    )
    assert bad.status_code == 422  # a bad value: named, with its range
    assert (
        bad.json()["detail"]
        == "Retrieval budget: Ensure this value is greater than or equal to 256."
    )
    assert client.delete("/api/kbs/gamma", **token).status_code == 204
    assert not KnowledgeBase.objects.filter(slug="gamma").exists()


def test_ordinary_user_reads_only_their_knowledge_bases_and_cannot_write(kbs, llm_server):
    alpha, _ = kbs
    user = get_user_model().objects.create_user("reader", password="pw-123456")
    alpha.members.add(user)
    kb_update(kb=kb_get_or_create(name="Open"), visibility="public")
    client = Client()
    client.force_login(user)
    assert sorted(kb["slug"] for kb in client.get("/api/kbs").json()) == ["alpha", "open"]
    assert client.get("/api/kbs/beta").status_code == 404
    listing = client.get("/api/kbs/alpha/documents")  # a member reads the list...
    assert listing.status_code == 200 and listing.json()["total"] == 1
    assert (
        client.post(f"/api/documents/{listing.json()['items'][0]['id']}/reindex").status_code == 403
    )
    answer = post_json(client, "/api/kbs/alpha/chat", {"question": "reset?"})
    assert answer.status_code == 200
    assert Conversation.objects.get().user == user
    assert post_json(client, "/api/kbs/beta/chat", {"question": "vault?"}).status_code == 404
    assert Message.objects.filter(role="assistant").count() == 1


@pytest.mark.parametrize("path", ["documents", "conversations"])
def test_lists_take_any_offset(path, kbs, keys):
    """Found by schemathesis: an offset past 64 bits was a 500 from SQLite."""
    _, write = keys
    client = Client()

    def items(response):
        body = response.json()
        return body["items"] if path == "documents" else body  # documents come in a page

    assert len(items(client.get(f"/api/kbs/alpha/{path}?offset=-5", **bearer(write)))) >= (
        path == "documents"
    )
    for offset in (10**13, 10**30):
        response = client.get(f"/api/kbs/alpha/{path}?offset={offset}", **bearer(write))
        assert response.status_code == 200 and items(response) == [], response.content


def test_a_rate_limited_model_is_a_429_with_retry_after(kbs, keys, llm_server, settings):
    from standin import Reply

    read, _ = keys
    settings.LLM_RETRY_MAX_SECONDS = 5
    llm_server.script(Reply.error(429, retry_after=90))
    response = post_json(
        Client(), "/api/kbs/alpha/chat", {"question": "How do I reset it?"}, **bearer(read)
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "90"
    body = response.json()
    assert "wait 90 s" in body["detail"] and body["message_id"]
    assert Message.objects.get(pk=body["message_id"]).status == "error"


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Bearer dk_wrong"}])
def test_a_program_without_a_valid_key_is_told_401_and_how_to_authenticate(kbs, headers):
    """Before: 403 {"detail": "CSRF check Failed"}, which says nothing about keys."""
    response = post_json(Client(), "/api/kbs/alpha/chat", {"question": "reset?"}, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["detail"]

"""A widget reveals only what it cited, to whoever it cited it to, for a short while."""

from __future__ import annotations

import json

import pytest
from django.core import signing
from django.test import Client

from assistant.models import Widget
from assistant.widgets import WidgetSession, citation_link
from ingest.models import Chunk, KnowledgeBase
from ingest.services import kb_get_or_create
from standin import Reply

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example"
RETURNS = "# Returns\n\nReturns are accepted within 30 days with a receipt."
PAY = "# Pay bands\n\nConfidential: engineers earn band E4 to E7."


@pytest.fixture
def members_only(ingest_text):
    kb = kb_get_or_create(name="Internal")
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.MEMBERS)
    returns = ingest_text(kb, "returns.md", RETURNS)
    pay = ingest_text(kb, "pay.md", PAY)
    widget = Widget.objects.create(name="Help", kb=kb, allowed_origins=SITE)
    return widget, returns, pay


def forged_origin_session(client: Client, widget: Widget) -> str:
    """What curl can do: claim an allowed Origin (only browsers are held to it)."""
    response = client.post(
        f"/widget/api/{widget.public_id}/session",
        data="{}",
        content_type="application/json",
        HTTP_ORIGIN=SITE,
    )
    return response.json()["token"]


def ask(client: Client, widget: Widget, token: str, question: str) -> str:
    """The widget's answer stream, as the visitor receives it."""
    response = client.post(
        f"/widget/api/{widget.public_id}/chat",
        data=json.dumps({"question": question}),
        content_type="application/json",
        HTTP_ORIGIN=SITE,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return b"".join(response.streaming_content).decode()


def test_a_session_token_does_not_open_documents(members_only):
    """Before: /widget/<id>/documents/<pk>/?t=<token> returned every document in full."""
    widget, _returns, pay = members_only
    client = Client()
    token = forged_origin_session(client, widget)
    old_style = client.get(f"/widget/{widget.public_id}/documents/{pay.pk}/?t={token}")
    assert old_style.status_code == 404 and b"band E4" not in old_style.content


def test_a_citation_link_opens_only_the_cited_passage(members_only):
    widget, returns, pay = members_only
    session = WidgetSession(widget, SITE, "visitor-1")
    cited = Chunk.objects.filter(document=returns).values_list("pk", flat=True)
    source = {"document_id": returns.pk, "pages": [], "chunk_ids": list(cited)}
    page = Client().get(citation_link(session=session, source=source))
    assert page.status_code == 200 and b"30 days" in page.content and b"band E4" not in page.content
    # The link names its document and chunks under a signature: editing it opens nothing.
    claim = {"w": widget.public_id, "d": pay.pk, "c": list(cited)}
    unsigned = signing.dumps(claim, salt="another.salt", compress=True)
    forged = Client().get(f"/widget/{widget.public_id}/cite/{unsigned}/")
    assert forged.status_code == 404 and b"band E4" not in forged.content


def test_a_paged_citation_shows_its_pages_and_no_others(members_only, ingest_text):
    from tests import factories

    widget, _returns, _pay = members_only
    pdf = factories.text_pdf(["Page one: returns policy.", "Page two: secret roadmap."])
    document = ingest_text(widget.kb, "manual.pdf", pdf)
    first = Chunk.objects.filter(document=document, page=1).values_list("pk", flat=True)
    source = {"document_id": document.pk, "pages": [1], "chunk_ids": list(first)}
    link = citation_link(session=WidgetSession(widget, SITE, "v"), source=source)
    page = Client().get(link)
    assert b"returns policy" in page.content and b"secret roadmap" not in page.content


def test_citation_links_expire(members_only, settings, monkeypatch):
    import time

    widget, returns, _pay = members_only
    cited = list(Chunk.objects.filter(document=returns).values_list("pk", flat=True))
    source = {"document_id": returns.pk, "pages": [], "chunk_ids": cited}
    link = citation_link(session=WidgetSession(widget, SITE, "v"), source=source)
    later = time.time() + settings.WIDGET_CITATION_SECONDS + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    expired = Client().get(link)
    assert expired.status_code == 410 and b"30 days" not in expired.content


def test_links_in_a_widget_answer_carry_no_session_token(members_only, llm_server):
    widget, _returns, _pay = members_only
    llm_server.script(Reply(text="Within 30 days [1]."))
    client = Client()
    token = forged_origin_session(client, widget)
    body = ask(client, widget, token, "How long do I have for returns?")
    assert "/cite/" in body and token not in body and "?t=" not in body


def test_provider_errors_reach_visitors_only_as_a_generic_message(members_only, llm_server):
    """Before: the provider's error text (hosts, account details) went to anonymous visitors."""
    from assistant.models import Message

    widget, _returns, _pay = members_only
    detail = "upstream llm-gpu-7.internal.corp quota exhausted for org acme-billing"
    llm_server.script(Reply(status=400, error_message=detail))
    client = Client()
    token = forged_origin_session(client, widget)
    body = ask(client, widget, token, "Returns?")
    assert "event: error" in body and "internal.corp" not in body and "acme" not in body
    saved = Message.objects.get(role="assistant")
    assert "internal.corp" in saved.error  # staff still see the detail in the admin

"""Citation links in API answers: absolute, and for a key a signed link that any browser
opens (only the cited pages) until it expires or the key is revoked."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client

from assistant.keys import api_key_create
from assistant.models import ApiKey
from ingest.services import kb_get_or_create

pytestmark = pytest.mark.django_db(transaction=True)
GUIDE = "# Guide\n\nThe widget resets when you hold the power button for ten seconds."
OTHER = "# Billing\n\nInvoices are sent on the first working day of each month."


@pytest.fixture
def key(ingest_text):
    kb = kb_get_or_create(name="Alpha")
    ingest_text(kb, "guide.md", GUIDE)
    ingest_text(kb, "billing.md", OTHER)
    return api_key_create(name="reader", knowledge_bases=[kb])[1]


def ask(client: Client, question: str, **extra) -> dict:
    response = client.post(
        "/api/kbs/alpha/chat",
        data=json.dumps({"question": question}),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 200, response.content
    return response.json()


def cited_url(body: dict) -> str:
    guide = next(s for s in body["sources"] if s["document"] == "guide.md")
    return guide["url"]


def test_a_keys_citation_links_are_absolute_and_open_in_a_plain_browser(key, llm_server):
    body = ask(Client(), "How do I reset the widget?", HTTP_AUTHORIZATION=f"Bearer {key}")
    url = cited_url(body)
    assert url.startswith("http://testserver/cite/"), url
    assert key not in url  # the key never travels in a URL
    assert all(p["url"].startswith("http://testserver/") for p in body["passages"])
    page = Client().get(urlsplit(url).path)  # no session, no key
    assert page.status_code == 200
    text = page.content.decode()
    assert "hold the power button for ten seconds" in text
    assert "Invoices are sent" not in text  # only what was cited
    assert 'href="/accounts/login/' not in text  # no Docent sign-in chrome
    assert "Alpha" in text  # whose source it is


def test_revoking_the_key_closes_its_links(key, llm_server):
    url = cited_url(ask(Client(), "How do I reset the widget?", HTTP_AUTHORIZATION=f"Bearer {key}"))
    ApiKey.objects.update(revoked=True)
    assert Client().get(urlsplit(url).path).status_code == 404


def test_a_link_loses_its_power_when_the_knowledge_base_leaves_the_key(key, llm_server):
    url = cited_url(ask(Client(), "How do I reset the widget?", HTTP_AUTHORIZATION=f"Bearer {key}"))
    ApiKey.objects.get().knowledge_bases.clear()
    assert Client().get(urlsplit(url).path).status_code == 404


def test_forged_and_expired_links_are_refused(key, llm_server, settings):
    url = cited_url(ask(Client(), "How do I reset the widget?", HTTP_AUTHORIZATION=f"Bearer {key}"))
    path = urlsplit(url).path
    signed = path.split("/")[2]
    forged = path.replace(signed, signed[:-2] + ("AA" if not signed.endswith("AA") else "BB"))
    assert Client().get(forged).status_code == 404
    claim = signing.loads(signed, salt="docent.citation")

    class LastWeek(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - settings.API_CITATION_SECONDS - 60)

    old = LastWeek(salt="docent.citation").sign_object(claim, compress=True)
    expired = Client().get(f"/cite/{old}/")
    assert expired.status_code == 410 and b"expired" in expired.content


def test_a_signed_in_browser_gets_absolute_links_to_the_document_page(key, staff_user, llm_server):
    browser = Client()
    browser.force_login(staff_user)
    url = cited_url(ask(browser, "How do I reset the widget?"))
    assert url.startswith("http://testserver/documents/"), url
    assert browser.get(urlsplit(url).path).status_code == 200

"""Document filters: the same rule on the chat page, the API and /v1 (MCP: test_mcp.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from assistant.keys import api_key_create
from ingest.filters import DocumentFilter, FilterError, document_filter_parse, documents_filtered
from ingest.models import Document
from ingest.services import document_tag_set, kb_get_or_create

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How do I reset the device?"


@pytest.fixture
def kb(ingest_text):
    kb = kb_get_or_create(name="Devices")
    router = ingest_text(
        kb, "router.md", "# Router\n\nReset the router by holding the pin for ten seconds."
    )
    ingest_text(
        kb, "printer.md", "# Printer\n\nReset the printer from its settings menu, then restart it."
    )
    document_tag_set(document=Document.objects.get(pk=router.pk), tag="network")
    return kb


def cited_documents(events_text: str) -> set[str]:
    """The documents of every passage an answer read, from its SSE events."""
    names = set()
    for block in events_text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "sources":
            names |= {s["document"] for s in json.loads(lines["data"])["sources"]}
    return names


def test_the_filter_parts_combine_and_refuse_what_they_cannot_read(kb):
    everything = documents_filtered(kb=kb, filters=DocumentFilter())
    assert everything is None  # no filter: no restriction at all
    router = Document.objects.get(filename="router.md")
    by_tag = documents_filtered(kb=kb, filters=document_filter_parse({"tags": ["network"]}))
    assert by_tag == (router.pk,)
    by_name_or_id = document_filter_parse({"documents": ["printer.md", str(router.pk)]})
    assert len(documents_filtered(kb=kb, filters=by_name_or_id)) == 2
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    with pytest.raises(FilterError, match="No ready document"):
        documents_filtered(kb=kb, filters=document_filter_parse({"uploaded_after": tomorrow}))
    today = timezone.now().date().isoformat()
    assert (
        len(documents_filtered(kb=kb, filters=document_filter_parse({"uploaded_before": today})))
        == 2
    )
    for bad, says in (
        ({"kinds": ["exe"]}, "Unknown document type"),
        ({"colour": ["red"]}, "Unknown filter"),
        ({"uploaded_after": "last week"}, "ISO date"),
        ({"documents": [{"id": 1}]}, "list of names"),
        ("router.md", "must be an object"),
    ):
        with pytest.raises(FilterError, match=says):
            document_filter_parse(bad)


def test_the_api_reads_only_the_filtered_documents(kb):
    _, token = api_key_create(name="k", knowledge_bases=[kb])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def ask(filters: dict | None) -> dict:
        body = {"question": QUESTION, "filters": filters}
        response = client.post(
            "/api/kbs/devices/chat", json.dumps(body), content_type="application/json"
        )
        return {"status": response.status_code, **response.json()}

    both = ask(None)
    assert {s["document"] for s in both["passages"]} == {"router.md", "printer.md"}
    printer = ask({"documents": ["printer.md"]})
    assert {s["document"] for s in printer["passages"]} == {"printer.md"}
    network = ask({"tags": ["network"], "kinds": ["markdown"]})
    assert {s["document"] for s in network["passages"]} == {"router.md"}
    refused = ask({"tags": ["no-such-tag"]})
    assert refused["status"] == 422 and "No ready document in Devices" in refused["detail"]
    tagged = client.patch(
        f"/api/documents/{Document.objects.get(filename='printer.md').pk}",
        json.dumps({"tag": "  office   printers "}),
        content_type="application/json",
    )
    assert tagged.status_code == 403  # a read-only key may not label documents
    assert Document.objects.get(filename="printer.md").tag == ""


def test_the_chat_page_asks_only_the_picked_documents(kb, staff_user):
    client = Client()
    client.force_login(staff_user)
    printer = Document.objects.get(filename="printer.md")
    picked = client.post(
        "/chat/stream", {"kb": "devices", "question": QUESTION, "documents": [printer.pk]}
    )
    assert cited_documents(b"".join(picked.streaming_content).decode()) == {"printer.md"}
    unpicked = client.post("/chat/stream", {"kb": "devices", "question": QUESTION})
    assert cited_documents(b"".join(unpicked.streaming_content).decode()) == {
        "router.md",
        "printer.md",
    }
    tagged = Client(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='w', knowledge_bases=[kb], can_write=True)[1]}"
    )
    response = tagged.patch(
        f"/api/documents/{printer.pk}",
        json.dumps({"tag": "  office   printers "}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["tag"] == "office printers"


def test_v1_takes_the_same_filters_as_an_extension(kb, llm_server):
    _, token = api_key_create(name="k", knowledge_bases=[kb])
    body = {
        "model": "docent/devices",
        "messages": [{"role": "user", "content": QUESTION}],
        "filters": {"documents": ["router.md"]},
    }
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        "/v1/chat/completions", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    sources = response.json()["choices"][0]["message"]["sources"]
    assert {s["document"] for s in sources} == {"router.md"}
    sent = json.dumps(llm_server.chat_requests[-1].body["messages"])
    assert "ten seconds" in sent and "settings menu" not in sent  # the model never saw the printer
    body["filters"] = {"kinds": ["exe"]}
    refused = client.post("/v1/chat/completions", json.dumps(body), content_type="application/json")
    assert (
        refused.status_code == 422 and "Unknown document type" in refused.json()["error"]["message"]
    )


def test_word_search_is_filtered_on_postgresql_too(postgres, tmp_path):
    """The lexical side filters in SQL on both databases (SQLite's runs in the tests above)."""
    from tests.conftest import shell_on_postgres

    script = """
import json
from ingest.models import Chunk, Document, KnowledgeBase
from ingest.selectors import chunks_search_lexical
kb = KnowledgeBase.objects.create(name="Pg filters")
ids = {}
for n, (name, text) in enumerate([("router.md", "Reset the router with the pin."), ("printer.md", "Reset the printer from its menu.")]):
    doc = Document.objects.create(kb=kb, filename=name, sha256=str(n) * 64, status="ready")
    Chunk.objects.create(kb=kb, document=doc, vector_id=f"v{n}", ordinal=0, text=text, token_count=8)
    ids[name] = doc.pk
def found(documents):
    hits = chunks_search_lexical(kb=kb, query="reset", limit=10, documents=documents)
    return sorted(Chunk.objects.get(pk=h.chunk_id).document.filename for h in hits)
print(json.dumps([found(None), found([ids["printer.md"]]), found([])]))
"""
    assert json.loads(shell_on_postgres(postgres, tmp_path, script)) == [
        ["printer.md", "router.md"],
        ["printer.md"],
        [],
    ]

"""A knowledge base keeps the embedder that indexed it; another one is flagged, not mixed in."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from assistant.retrieval import retrieve
from ingest.models import Document, KnowledgeBase
from ingest.services import IngestTools, document_create, document_ingest, kb_get_or_create
from ingest.services.embedders import (
    kb_embedder_problem,
    kb_reindex_embedder,
    kbs_embedder_mismatched,
    server_embedder_name,
)
from ministral.tokens import get_counter
from tests.fakes import HashEmbedder, MemoryStore

pytestmark = pytest.mark.django_db(transaction=True)


class OtherBackend(HashEmbedder):
    """The same vectors under another backend's name: what switching EMBEDDING_BACKEND does."""

    name = "hash-embedder (onnx-int8)"


@pytest.fixture
def store():
    return MemoryStore()


def tools_for(embedder, store) -> IngestTools:
    return IngestTools(embedder=embedder, store=store, count_llm_tokens=get_counter().text)


def ingest(tools, kb, name: str, text: str) -> Document:
    document = document_create(
        kb=kb, filename=name, content=io.BytesIO(text.encode()), enqueue=False
    ).document
    return document_ingest(document_id=document.pk, owner="test:1:1", tools=tools)


def test_a_new_backend_is_refused_for_a_kb_the_old_one_indexed(store):
    kb = kb_get_or_create(name="Printers")
    first = ingest(tools_for(HashEmbedder(), store), kb, "a.md", "Error E-42: the tray is empty.")
    assert first.status == "ready"
    kb.refresh_from_db()
    assert kb.embedder == "hash-embedder"
    vectors = store.count(collection=kb.collection_name)

    second = ingest(tools_for(OtherBackend(), store), kb, "b.md", "The printer joins Wi-Fi.")
    assert second.status == "failed"
    assert "indexed with hash-embedder" in second.error and "re-index" in second.error
    assert store.count(collection=kb.collection_name) == vectors  # nothing of it was written


def test_questions_skip_another_backends_vectors_until_reindexed(store, caplog):
    kb = kb_get_or_create(name="Printers")
    old = tools_for(HashEmbedder(), store)
    printer = ingest(old, kb, "a.md", "# Errors\n\nError E-42 means the paper tray is empty.")
    ingest(old, kb, "b.md", "# Network\n\nThe printer joins Wi-Fi from the settings menu.")
    kb.refresh_from_db()  # as each request loads it
    new = OtherBackend()
    hits = retrieve(kb=kb, query="what does E-42 mean", embedder=new, store=store, limit=5)
    # Found by its words only: no hit has a dense rank, and the admin is told why.
    assert hits[0].chunk.document_id == printer.pk
    assert all(h.dense_rank is None for h in hits)
    assert "Re-index it (manage.py kb_reindex printers)" in caplog.text
    assert kbs_embedder_mismatched(embedder_name=new.name) == [kb]

    assert kb_reindex_embedder(kb=kb, store=store, embedder_name=new.name) == 2
    assert store.count(collection=kb.collection_name) == 0  # the old vectors are gone
    assert set(kb.documents.values_list("status", flat=True)) == {"queued"}
    for document in kb.documents.all():
        assert document_ingest(document_id=document.pk, owner="t:1:1", tools=tools_for(new, store))
    hits = retrieve(kb=kb, query="what does E-42 mean", embedder=new, store=store, limit=5)
    assert hits[0].chunk.document_id == printer.pk and hits[0].dense_rank == 1
    assert kbs_embedder_mismatched(embedder_name=new.name) == []


def test_changing_the_setting_flags_the_kb_for_the_admin(settings, admin_client):
    settings.EMBEDDING_BACKEND = "torch"
    kb = KnowledgeBase.objects.create(name="Manuals", embedder=server_embedder_name())
    assert kb_embedder_problem(kb=kb, embedder_name=server_embedder_name()) == ""
    settings.EMBEDDING_BACKEND = "onnx-int8"
    assert server_embedder_name() == f"{kb.embedder} (onnx-int8)"
    page = admin_client.get(f"/admin/ingest/knowledgebase/{kb.pk}/change/").content.decode()
    assert f"was indexed with {kb.embedder}, but this server embeds with" in page
    assert "manage.py kb_reindex manuals" in page


def test_kb_reindex_command_requeues_mismatched_kbs(settings, capsys):
    settings.EMBEDDING_BACKEND = "torch"
    KnowledgeBase.objects.create(name="Old", embedder="some-other-model")
    KnowledgeBase.objects.create(name="Fresh")
    call_command("kb_reindex", "--mismatched")
    out = capsys.readouterr().out
    assert "Old: 0 document(s) queued" in out and "Fresh" not in out
    assert KnowledgeBase.objects.get(name="Old").embedder == server_embedder_name()

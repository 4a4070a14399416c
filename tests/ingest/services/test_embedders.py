"""A knowledge base keeps the embedder that indexed it; another one is flagged, not mixed in."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from assistant.retrieval import retrieve
from assistant.tools import chat_tools
from ingest.models import Document, KnowledgeBase
from ingest.services import (
    IngestTools,
    document_create,
    document_ingest,
    ingest_tools,
    kb_get_or_create,
)
from ingest.services.embedders import (
    kb_embedder_note,
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


def tools_for(embedder, store, *, runs=()) -> IngestTools:
    """Tools whose server embeds with `embedder` and can also run the embedders `runs`."""
    others = {e.name: e for e in runs}
    return IngestTools(
        embedder=embedder,
        store=store,
        count_llm_tokens=get_counter().text,
        embedder_named=others.get,
    )


def ingest(tools, kb, name: str, text: str) -> Document:
    document = document_create(
        kb=kb, filename=name, content=io.BytesIO(text.encode()), enqueue=False
    ).document
    return document_ingest(document_id=document.pk, owner="test:1:1", tools=tools)


class OtherModel(HashEmbedder):
    name = "another-model"


def test_a_kb_keeps_the_backend_that_indexed_it_after_the_server_changes(store):
    old = HashEmbedder()
    kb = kb_get_or_create(name="Printers")
    first = ingest(tools_for(old, store), kb, "a.md", "Error E-42: the tray is empty.")
    assert first.status == "ready"
    kb.refresh_from_db()
    assert kb.embedder == "hash-embedder"

    # The server now embeds with another backend of the same model: it can still run the
    # old one, so the knowledge base's next document is indexed as its first one was.
    second = ingest(tools_for(OtherBackend(), store, runs=[old]), kb, "b.md", "Wi-Fi setup.")
    assert second.status == "ready", second.error
    kb.refresh_from_db()
    assert kb.embedder == "hash-embedder"
    assert store.count(collection=kb.collection_name) == 2
    # A new knowledge base takes the server's embedder.
    fresh = kb_get_or_create(name="Manuals")
    ingest(tools_for(OtherBackend(), store, runs=[old]), fresh, "c.md", "The manual.")
    fresh.refresh_from_db()
    assert fresh.embedder == "hash-embedder (onnx-int8)"


def test_a_kb_another_model_indexed_refuses_new_documents_until_reindexed(store):
    kb = kb_get_or_create(name="Printers")
    ingest(tools_for(HashEmbedder(), store), kb, "a.md", "Error E-42: the tray is empty.")
    vectors = store.count(collection=kb.collection_name)

    second = ingest(tools_for(OtherModel(), store), kb, "b.md", "The printer joins Wi-Fi.")
    assert second.status == "failed"
    assert "indexed with hash-embedder" in second.error and "re-index" in second.error
    assert store.count(collection=kb.collection_name) == vectors  # nothing of it was written


def test_questions_skip_another_backends_vectors_until_reindexed(store, caplog):
    kb = kb_get_or_create(name="Printers")
    old = tools_for(HashEmbedder(), store)
    printer = ingest(old, kb, "a.md", "# Errors\n\nError E-42 means the paper tray is empty.")
    ingest(old, kb, "b.md", "# Network\n\nThe printer joins Wi-Fi from the settings menu.")
    kb.refresh_from_db()  # as each request loads it
    new = OtherModel()  # another model: this server can't embed a question as they were
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


def test_the_admin_sees_which_embedder_a_kb_uses(settings, admin_client):
    settings.EMBEDDING_BACKEND = "torch"
    kb = KnowledgeBase.objects.create(name="Manuals", embedder=server_embedder_name())
    assert kb_embedder_note(kb=kb) == ""
    settings.EMBEDDING_BACKEND = "onnx-int8"
    assert server_embedder_name() == f"{kb.embedder} (onnx-int8)"
    page = admin_client.get(f"/admin/ingest/knowledgebase/{kb.pk}/change/").content.decode()
    assert f"was indexed with {kb.embedder}; its questions and new documents keep using it" in (
        page
    )
    assert "manage.py kb_reindex manuals moves it to" in page

    KnowledgeBase.objects.filter(pk=kb.pk).update(embedder="some-other-model")
    page = admin_client.get(f"/admin/ingest/knowledgebase/{kb.pk}/change/").content.decode()
    assert "was indexed with some-other-model, which this server can&#x27;t run" in page
    assert "questions search its words only" in page


def test_kb_reindex_command_requeues_mismatched_kbs(settings, capsys):
    settings.EMBEDDING_BACKEND = "torch"
    KnowledgeBase.objects.create(name="Old", embedder="some-other-model")
    KnowledgeBase.objects.create(name="Fresh")
    call_command("kb_reindex", "--mismatched")
    out = capsys.readouterr().out
    assert "Old: 0 document(s) queued" in out and "Fresh" not in out
    assert KnowledgeBase.objects.get(name="Old").embedder == server_embedder_name()


@pytest.mark.slow
def test_after_the_default_moves_to_int8_a_torch_kb_still_answers_by_meaning(settings):
    """The real backends: moving the server to int8 re-indexes nothing and loses nothing."""
    settings.EMBEDDING_BACKEND = "torch"
    kb = kb_get_or_create(name="Old manuals")
    paper = ingest(ingest_tools(), kb, "a.md", "# Errors\n\nError E-42: the paper tray is empty.")
    ingest(ingest_tools(), kb, "b.md", "# Network\n\nThe printer joins Wi-Fi from its menu.")
    kb.refresh_from_db()
    torch_name = kb.embedder

    settings.EMBEDDING_BACKEND = "onnx-int8"
    tools = chat_tools(kb)
    assert tools.embedder.name == torch_name

    def best(query: str):
        (hit, *_) = retrieve(
            kb=kb, query=query, embedder=tools.embedder, store=tools.store, limit=5
        )
        return hit.chunk.document_id, hit.dense_rank

    assert best("my printer ran out of sheets") == (paper.pk, 1)

    later = ingest(ingest_tools(), kb, "c.md", "# Toner\n\nShake the toner cartridge gently.")
    assert later.status == "ready", later.error
    kb.refresh_from_db()
    assert kb.embedder == torch_name
    assert best("how to handle the ink powder") == (later.pk, 1)

    new = kb_get_or_create(name="New manuals")
    assert chat_tools(new).embedder.name == f"{torch_name} (onnx-int8)"

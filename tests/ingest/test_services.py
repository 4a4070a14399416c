"""The ingest services end to end, in-process, on real SQLite, Chroma and the real model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from ingest.models import Asset, Chunk, Document
from ingest.services import (
    document_create,
    document_delete,
    document_ingest,
    document_reindex,
    kb_delete,
    kb_get_or_create,
)
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def upload(kb, name: str, data: bytes):
    return document_create(kb=kb, filename=name, content=io.BytesIO(data), enqueue=False)


def ingest(tools, document) -> Document:
    result = document_ingest(document_id=document.pk, owner="test:1:1", tools=tools)
    return result if result is not None else Document.objects.get(pk=document.pk)


def fts_hits(kb, term: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.document_id FROM ingest_chunk_fts f JOIN ingest_chunk c ON c.id = f.rowid "
            "WHERE ingest_chunk_fts MATCH %s AND c.kb_id = %s",
            [term, kb.pk],
        )
        return {row[0] for row in cursor.fetchall()}


def assert_store_agrees(kb, store):
    """Chroma holds exactly the vectors the database says are live."""
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert store.ids(collection=kb.collection_name) == rows


def test_markdown_becomes_searchable(kb, tools, store):
    data = b"# Widgets\n\nThe frobnicator resets every widget at midnight.\n"
    document = ingest(tools, upload(kb, "widgets.md", data).document)
    assert (document.status, document.stage, document.progress) == ("ready", "ready", 100)
    assert document.kind == "markdown" and document.size_bytes == len(data)
    chunk = document.chunks.get()
    assert chunk.heading == "Widgets" and "frobnicator" in chunk.text
    assert chunk.token_count > 5  # Ministral tokens, used later for packing
    assert fts_hits(kb, "frobnicator") == {document.pk}
    assert_store_agrees(kb, store)
    with default_storage.open(document.file.name) as stored:
        assert stored.read() == data  # the original is kept


def test_same_bytes_twice_make_one_document(kb, tools):
    first = upload(kb, "a.txt", b"same content")
    second = upload(kb, "renamed.txt", b"same content")
    assert first.created and not second.created
    assert second.document.pk == first.document.pk
    assert Document.objects.filter(kb=kb).count() == 1
    other_kb = kb_get_or_create(name="Other")
    assert upload(other_kb, "a.txt", b"same content").created  # per knowledge base


def test_reingest_replaces_chunks_and_vectors(kb, tools, store):
    document = ingest(tools, upload(kb, "r.md", b"# One\n\nFirst version text.").document)
    old_ids = set(document.chunks.values_list("vector_id", flat=True))
    document_reindex(document=document)
    document = ingest(tools, document)
    assert document.status == "ready" and document.generation == 2
    new_ids = set(document.chunks.values_list("vector_id", flat=True))
    assert new_ids and not (new_ids & old_ids)
    assert_store_agrees(kb, store)
    again = set(
        ingest(tools, document_reindex(document=document)).chunks.values_list(
            "vector_id", flat=True
        )
    )
    assert again == {v.replace("g2", "g3") for v in new_ids}  # ids are deterministic


def test_delete_removes_chunks_vectors_and_files(kb, tools, store):
    shot = factories.text_image(["Printer error E-42: paper jam"])
    document = ingest(tools, upload(kb, "shot.png", shot).document)
    asset = document.assets.get()
    paths = [
        Path(default_storage.path(document.file.name)),
        Path(default_storage.path(asset.file.name)),
    ]
    assert all(p.exists() for p in paths)
    document_delete(document=document, store=store)
    assert (
        not Document.objects.exists() and not Chunk.objects.exists() and not Asset.objects.exists()
    )
    assert not any(p.exists() for p in paths)
    assert fts_hits(kb, "jam") == set()
    assert_store_agrees(kb, store)


def test_screenshot_is_ocrd_and_kept_for_the_model(kb, tools):
    shot = factories.text_image(["Settings > Network > Proxy", "Connection timed out after 30s"])
    document = ingest(tools, upload(kb, "proxy.png", shot).document)
    assert document.status == "ready", document.error
    asset = document.assets.get()
    assert asset.source == "upload" and asset.mime_type == "image/png" and asset.width == 900
    chunk = document.chunks.get()
    assert chunk.asset == asset and "timed out" in chunk.text.lower()


def test_scanned_pdf_pages_are_searchable_with_page_numbers(kb, tools):
    data = factories.scanned_pdf([["Warranty terms"], ["Refunds take 14 business days"]])
    document = ingest(tools, upload(kb, "scan.pdf", data).document)
    assert document.status == "ready", document.error
    assert document.page_count == 2
    refund = next(c for c in document.chunks.all() if "refund" in c.text.lower())
    assert refund.page == 2 and refund.asset.page == 2


def test_docx_html_and_text_ingest(kb, tools):
    files = {
        "guide.docx": factories.docx([("h1", "Guide"), ("p", "Reboot the router twice.")]),
        "page.html": b"<html><body><h2>FAQ</h2><p>Ports 80 and 443 must be open.</p></body></html>",
        "notes.txt": b"Plain notes mention the quarterly audit.",
    }
    for name, data in files.items():
        document = ingest(tools, upload(kb, name, data).document)
        assert document.status == "ready", (name, document.error)
    assert fts_hits(kb, "router") and fts_hits(kb, "443") and fts_hits(kb, "audit")


def test_each_bad_input_fails_alone_with_a_specific_reason(kb, tools, settings, shared, store):
    settings.MAX_UPLOAD_BYTES = 300_000
    settings.MAX_PDF_PAGES = 3
    good = upload(kb, "good.md", b"# Good\n\nThis one is fine.").document
    bad = {
        "empty.txt": (b"", "empty"),
        "just-over.txt": (b"x" * 300_001, "This file is just over the 293 KB limit."),
        "huge.txt": (b"x" * 330_000, r"^This file is 322 KB; the limit is 293 KB\.$"),
        "program.pdf": (b"\x7fELF\x02\x01\x01" + bytes(300), "Unsupported file type"),
        "truncated.pdf": (
            factories.text_pdf(["x" * 3000] * 3)[:500],
            "damaged or truncated|no pages",
        ),
        "locked.pdf": (factories.text_pdf(["secret"], password="pw"), "protected by a password"),
        "bomb.png": (factories.bomb_png(), "decompression bomb"),
        "long.pdf": (factories.text_pdf(["p"] * 5), "5 pages; the limit is 3"),
        "../../etc/passwd": (b"root:x:0:0", None),  # traversal: stored safely, ingests fine
        "r\u00e9sum\u00e9\u202e.txt\x00": (b"odd unicode name", None),
    }
    documents = {name: upload(kb, name, data).document for name, (data, _) in bad.items()}
    for name, (_, message) in bad.items():
        document = (
            ingest(tools, documents[name])
            if documents[name].status == "queued"
            else documents[name]
        )
        if message is None:
            assert document.status == "ready", (name, document.error)
        else:
            assert document.status == "failed", name
            assert document.stage == "failed"
            import re

            assert re.search(message, document.error), (name, document.error)
    assert documents["../../etc/passwd"].filename == "passwd"
    assert documents["r\u00e9sum\u00e9\u202e.txt\x00"].filename == "r\u00e9sum\u00e9.txt"
    stored = Path(default_storage.path(documents["../../etc/passwd"].file.name))
    assert Path(default_storage.location) in stored.parents
    assert ingest(tools, good).status == "ready"
    assert_store_agrees(kb, store)


def test_extraction_time_limit_fails_the_document(kb, tools, settings, shared):
    settings.INGEST_TIMEOUT_SECONDS = 1.0
    data = (shared / "corpora/manuals/gnuplot.pdf").read_bytes()
    document = ingest(tools, upload(kb, "gnuplot.pdf", data).document)
    assert document.status == "failed"
    assert "longer than the 1 s limit" in document.error


def test_failed_upload_is_retried_when_uploaded_again(kb, tools, settings):
    # A limit no extraction can meet (a tiny file can finish within 10 ms on a fast box).
    settings.INGEST_TIMEOUT_SECONDS = 1e-9
    document = ingest(tools, upload(kb, "a.md", b"# A\n\nretry me").document)
    assert document.status == "failed"
    settings.INGEST_TIMEOUT_SECONDS = 60
    again = upload(kb, "a.md", b"# A\n\nretry me")
    assert not again.created and again.document.status == "queued"
    assert ingest(tools, again.document).status == "ready"


def test_kb_delete_removes_everything(tools, store, db):
    kb = kb_get_or_create(name="Doomed")
    ingest(tools, upload(kb, "x.md", b"# X\n\ncontent").document)
    collection = kb.collection_name
    kb_delete(kb=kb, store=store)
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not Path(default_storage.path(f"kb/{kb.pk}")).exists()
    assert collection not in store.collection_names()

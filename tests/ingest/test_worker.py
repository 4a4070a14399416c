"""The real worker process: queued uploads get indexed, and a killed worker loses nothing."""

from __future__ import annotations

import io
import time

import pytest

from ingest.models import Chunk, Document
from ingest.services import document_create
from tests.conftest import wait_for_document

pytestmark = pytest.mark.django_db(transaction=True)


def test_uploads_are_indexed_by_the_worker_with_visible_progress(worker_factory, kb, store, shared):
    pdf = (shared / "corpora/pdf-samples/004-pdflatex-4-pages/pdflatex-4-pages.pdf").read_bytes()
    document = document_create(kb=kb, filename="four.pdf", content=io.BytesIO(pdf)).document
    assert (document.status, document.stage) == ("queued", "queued")  # nothing ran in "the request"
    worker_factory()
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        document.refresh_from_db()
        seen.add((document.stage, document.progress))
        if document.status in {"ready", "failed"}:
            break
        time.sleep(0.05)
    assert document.status == "ready", document.error
    assert document.page_count == 4 and document.chunk_count > 0
    stages = {stage for stage, _ in seen}
    assert {"ready"} < stages  # at least one intermediate stage was observed
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert store.ids(collection=kb.collection_name) == rows


PAGES = 50  # of gnuplot.pdf's 311: long enough to be killed mid-embedding, quicker to redo


def first_pages(path, count: int) -> bytes:
    """The first `count` pages of a real PDF, as a PDF."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(path).pages[:count]:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_worker_killed_mid_document_is_recovered_and_stores_agree(
    worker_factory, kb, store, shared
):
    manual = first_pages(shared / "corpora/manuals/gnuplot.pdf", PAGES)
    document = document_create(kb=kb, filename="gnuplot.pdf", content=io.BytesIO(manual)).document
    first = worker_factory()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.stage == "embedding" and document.progress >= 55:
            break
        assert document.status != "failed", document.error
        time.sleep(0.1)
    else:
        pytest.fail(f"never reached embedding: {document.stage} {document.progress}")
    first.kill()  # SIGKILL, mid-embedding: vectors of a half-written generation are in Chroma
    document.refresh_from_db()
    assert document.status == "processing" and document.generation == 0
    assert not Chunk.objects.filter(document=document).exists()  # nothing half-indexed is live
    partial = store.ids(collection=kb.collection_name)
    assert partial, "expected some vectors written before the kill"

    worker_factory()  # the restart notices the dead worker's lease at once
    document = wait_for_document(document.pk, timeout=600)
    assert document.status == "ready", document.error
    assert document.attempts == 2 and document.generation == 1
    assert document.page_count == PAGES
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert len(rows) == document.chunk_count
    assert store.ids(collection=kb.collection_name) == rows


def test_recovery_gives_up_after_the_attempt_limit(worker_factory, kb, store):
    from datetime import timedelta

    from django.utils import timezone

    document = document_create(kb=kb, filename="n.md", content=io.BytesIO(b"# N\n\nnote")).document
    # As if three workers in a row had died holding it (leases long expired).
    Document.objects.filter(pk=document.pk).update(
        status="processing",
        stage="embedding",
        attempts=3,
        lease_owner="elsewhere:1:1",
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )
    worker_factory()
    document = wait_for_document(document.pk, timeout=60)
    assert document.status == "failed"
    assert "stopped unexpectedly 3 times" in document.error

"""What a person watching an upload sees: honest duplicates, human reasons, whether Retry can
work, progress that moves during reading, and Cancel. Fast fakes for the model and Chroma."""

from __future__ import annotations

import io
import re
import time

import pytest

from ingest.models import Chunk, Document
from ingest.services import IngestTools, document_create, document_ingest, document_reindex
from ingest.services.lifecycle import document_cancel, document_claim
from tests import factories
from tests.fakes import HashEmbedder, MemoryStore

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = "test:1:1"


class WatchingEmbedder(HashEmbedder):
    """Encodes slowly, and notes what the document's row said each time it was called."""

    def __init__(self, document_id: int, pause: float = 0.0, on_encode=None) -> None:
        self.document_id, self.pause, self.on_encode = document_id, pause, on_encode
        self.seen: list[tuple[str, int, str]] = []  # (stage, percent, detail) in the database

    def encode(self, texts, *, batch_size: int = 32):
        row = Document.objects.get(pk=self.document_id)
        self.seen.append((row.stage, row.progress, row.progress_detail))
        if self.on_encode is not None:
            self.on_encode(len(self.seen))
        time.sleep(self.pause)
        return super().encode(texts, batch_size=batch_size)


def upload(kb, name: str, data: bytes):
    return document_create(kb=kb, filename=name, content=io.BytesIO(data), enqueue=False)


def tools_for(embedder, store=None) -> IngestTools:
    return IngestTools(
        embedder=embedder, store=store or MemoryStore(), count_llm_tokens=lambda t: len(t.split())
    )


def test_an_empty_pdf_after_an_empty_text_file_is_its_own_refused_upload(kb):
    """Before: the empty PDF came back as "already in this knowledge base" (the .txt row)."""
    text = upload(kb, "notes.txt", b"")
    pdf = upload(kb, "scan.pdf", b"")
    assert pdf.created and pdf.document.pk != text.document.pk
    assert pdf.document.filename == "scan.pdf" and pdf.document.error == "This file is empty."
    assert not pdf.document.retryable  # nothing was kept, so Retry is not offered
    again = upload(kb, "scan.pdf", b"")  # the same refusal again replaces the earlier one
    assert again.created
    names = sorted(Document.objects.filter(kb=kb).values_list("filename", flat=True))
    assert names == ["notes.txt", "scan.pdf"]


def test_a_file_that_cannot_be_indexed_is_not_retried_and_says_why(kb, settings):
    locked = factories.text_pdf(["secret"], password="pw")
    document = upload(kb, "locked.pdf", locked).document
    document = document_ingest(
        document_id=document.pk, owner=OWNER, tools=tools_for(HashEmbedder())
    )
    assert document is not None and document.status == "failed"
    assert "protected by a password" in document.error
    assert not document.retryable
    with pytest.raises(Exception, match="upload a corrected file instead"):
        document_reindex(document=document)
    same = upload(kb, "locked-again.pdf", locked)  # same bytes: the same document, not re-run
    assert not same.created and same.document.status == "failed"


def test_a_time_limit_is_worth_retrying(kb, settings):
    settings.INGEST_TIMEOUT_SECONDS = 1e-9  # a limit no extraction can meet
    document = upload(kb, "a.md", b"# A\n\nretry me").document
    document = document_ingest(
        document_id=document.pk, owner=OWNER, tools=tools_for(HashEmbedder())
    )
    assert document is not None and document.status == "failed"
    assert re.fullmatch(
        r"Reading this document took longer than the 1e-09 s limit; .*", document.error
    )
    assert document.retryable
    settings.INGEST_TIMEOUT_SECONDS = 60
    assert document_reindex(document=document).status == "queued"


def test_a_long_pdf_reports_its_pages_while_they_are_read(kb, settings):
    settings.EMBED_BATCH_SIZE = 1  # pages are embedded 4 passages at a time, while reading
    pages = [f"Page {n}. " + "The pump manual explains valves and seals. " * 12 for n in range(30)]
    document = upload(kb, "manual.pdf", factories.text_pdf(pages)).document
    embedder = WatchingEmbedder(document.pk, pause=0.12)
    done = document_ingest(document_id=document.pk, owner=OWNER, tools=tools_for(embedder))
    assert done is not None and done.status == "ready", done and done.error
    reading = [(p, d) for s, p, d in embedder.seen if s == "extracting" and d]
    numbers = [int(re.fullmatch(r"page (\d+) of 30", d).group(1)) for _, d in reading]  # type: ignore[union-attr]
    assert any(1 < n < 30 for n in numbers), embedder.seen  # written mid-way, not only at the end
    assert numbers == sorted(numbers) and any(0 < p < 90 for p, _ in reading)
    assert done.progress_detail == "" and done.progress == 100


def test_a_long_text_file_reports_bytes_then_passages(kb, settings):
    settings.EMBED_BATCH_SIZE = 8
    paragraph = "Check the pressure before you open the housing and replace the seal. " * 6
    data = "\n\n".join(f"{n}. {paragraph}" for n in range(700)).encode()  # ~300 KB
    document = upload(kb, "long.txt", data).document
    embedder = WatchingEmbedder(document.pk, pause=0.05)
    done = document_ingest(document_id=document.pk, owner=OWNER, tools=tools_for(embedder))
    assert done is not None and done.status == "ready", done and done.error
    details = [d for _, _, d in embedder.seen]
    partway = [d for d in details if re.fullmatch(r"\d+ of 287 KB", d) and not d.startswith("0 ")]
    assert partway, details  # "120 of 287 KB" while the text is still being chunked
    percents = [p for _, p, _ in embedder.seen]
    assert percents == sorted(percents) and any(0 < p < 90 for p in percents)


def test_the_passage_count_is_shown_while_embedding(kb):
    document = upload(kb, "short.md", b"# Pump\n\n" + b"Valves and seals. " * 1500).document
    embedder = WatchingEmbedder(document.pk)
    done = document_ingest(document_id=document.pk, owner=OWNER, tools=tools_for(embedder))
    assert done is not None and done.status == "ready"
    assert embedder.seen[-1] == ("embedding", 90, f"embedding 0 of {done.chunk_count} passages")


def test_cancelling_a_queued_document_stops_it_at_once_and_reindex_restarts_it(kb):
    document = upload(kb, "a.md", b"# A\n\nwaiting").document
    assert document_cancel(document_id=document.pk)
    document.refresh_from_db()
    assert (document.status, document.failure) == ("failed", "cancelled")
    assert document.error == "Cancelled. Re-index to start again." and document.retryable
    assert (
        document_ingest(document_id=document.pk, owner=OWNER, tools=tools_for(HashEmbedder()))
        is None
    )
    assert not document_cancel(document_id=document.pk)  # nothing left to cancel
    assert document_reindex(document=document).status == "queued"


def test_cancelling_while_processing_stops_at_the_next_checkpoint_and_discards_the_run(
    kb, settings
):
    settings.EMBED_BATCH_SIZE = 1
    pages = [f"Page {n}. " + "Seals and valves of the pump. " * 20 for n in range(20)]
    document = upload(kb, "big.pdf", factories.text_pdf(pages)).document
    store = MemoryStore()
    embedder = WatchingEmbedder(
        document.pk,
        pause=0.3,
        on_encode=lambda calls: calls == 2 and document_cancel(document_id=document.pk),
    )
    result = document_ingest(document_id=document.pk, owner=OWNER, tools=tools_for(embedder, store))
    assert result is None  # it stopped instead of finishing
    assert len(embedder.seen) < 6  # at the next checkpoint, not after all 20 pages
    document.refresh_from_db()
    assert (document.status, document.failure, document.lease_owner) == ("failed", "cancelled", "")
    assert document.retryable and not Chunk.objects.filter(document=document).exists()
    assert store.ids(collection=kb.collection_name) == set()  # the partial vectors are gone
    document_reindex(document=document)
    again = document_ingest(
        document_id=document.pk, owner=OWNER, tools=tools_for(HashEmbedder(), store)
    )
    assert again is not None and again.status == "ready"


def test_a_cancelled_document_cannot_be_requeued_while_its_worker_still_holds_it(kb):
    document = upload(kb, "a.md", b"# A\n\nbusy").document
    document_claim(document_id=document.pk, owner="w1")  # a live worker is on it
    document_cancel(document_id=document.pk)
    document.refresh_from_db()
    assert document.status == "failed" and not document.retryable
    with pytest.raises(Exception, match="still stopping"):
        document_reindex(document=document)


def test_a_long_text_is_cut_between_paragraphs_never_inside_code():
    from ingest.pipeline.extract import _split_text

    assert _split_text("one\n\ntwo") == ["one\n\ntwo"]
    fenced = "```\n" + "\n\n".join(["code line"] * 20_000) + "\n```"
    assert _split_text(fenced + "\n\nafter") == [fenced, "after"]

"""document_ingest: one document through extract -> (OCR) -> chunk -> embed -> store.

Consistency rule: the database decides what is live. New vectors are written under a
new index generation first; one transaction then swaps the document's chunk rows and
bumps its generation; only after that are the old generation's vectors deleted.
Retrieval ignores vectors without a chunk row, so a crash at any point leaves either
the old version or the new one searchable, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, transaction

from ingest.models import Asset, Chunk, Document, DocumentFailure, DocumentStage, DocumentStatus
from ingest.pipeline.chunk import Chunker
from ingest.pipeline.sandbox import ExtractedPage, iter_extraction
from ingest.pipeline.types import (
    ChunkDraft,
    ExtractionEnd,
    ImageData,
    IngestError,
    Limits,
    Progress,
    human_bytes_of,
)
from ingest.store import StoreUnavailable

from .calibration import kb_calibrate_if_changed
from .embedders import kb_embedder_settle
from .files import asset_prefix, storage_delete_tree
from .generations import generation_discard, generations_keep_only
from .lifecycle import (
    KEPT,
    document_claim,
    document_heartbeat,
    document_lease_extend,
    document_let_go,
    document_mark_failed,
    document_mark_ready,
    document_release,
)
from .tools import IngestTools

logger = logging.getLogger("docent.ingest")
ProgressCallback = Callable[[str, int], None]  # (stage, percent 0-100)

# Where each stage ends on the progress bar, in percent. Pages are chunked and embedded
# while later ones are read, so reading owns most of it; the rest is the last batches.
_READ_END, _EMBED_END = 90, 97


class LeaseLost(Exception):
    """Another worker took the document over, or it was deleted or cancelled, while we worked."""


def ingest_limits() -> Limits:
    return Limits(
        max_pdf_pages=settings.MAX_PDF_PAGES,
        max_image_pixels=settings.MAX_IMAGE_PIXELS,
        max_extracted_chars=settings.MAX_EXTRACTED_CHARS,
        timeout_seconds=settings.INGEST_TIMEOUT_SECONDS,
        memory_limit_mb=settings.INGEST_MEMORY_LIMIT_MB,
        ocr_enabled=settings.OCR_ENABLED,
        ocr_min_text_height_px=settings.OCR_MIN_TEXT_HEIGHT_PX,
    )


def document_ingest(
    *,
    document_id: int,
    owner: str,
    tools: IngestTools,
    on_progress: ProgressCallback | None = None,
) -> Document | None:
    """Process one queued document. Returns it in its final state, or None if not ours."""
    document = document_claim(document_id=document_id, owner=owner)
    if document is None:
        return None
    if document.attempts > settings.INGEST_MAX_ATTEMPTS:
        return _fail(
            document, owner, tools, "Gave up after repeated attempts.", DocumentFailure.INTERRUPTED
        )
    writer = _ProgressWriter(document.pk, owner, on_progress)
    heartbeat = _Heartbeat(document.pk, owner)
    heartbeat.start()
    generation = document.generation + 1
    try:
        end, images, drafts, vector_ids = _pipeline(document, generation, tools, writer)
        assets = _save_assets(document, generation, images)
        _commit(document, owner, generation, end, drafts, vector_ids, assets)
        generations_keep_only(document=document, live=generation, store=tools.store)
    except IngestError as exc:
        failure = DocumentFailure.UNREADABLE if exc.permanent else DocumentFailure.INTERRUPTED
        return _fail(document, owner, tools, str(exc), failure)
    except LeaseLost:
        logger.info("Document %s was cancelled, deleted or taken over", document_id)
        generation_discard(document=document, generation=generation, store=tools.store)
        return None
    except (StoreUnavailable, OperationalError) as exc:
        logger.warning("Document %s: transient failure, will retry: %s", document_id, exc)
        document_release(
            document_id=document.pk,
            owner=owner,
            message="The search index or database was unreachable; Docent will try again shortly.",
        )
        raise
    except Exception as exc:
        logger.exception("Document %s: unexpected failure", document_id)
        message = (
            f"Something went wrong inside Docent while indexing this document "
            f"({type(exc).__name__}). Re-index to try again."
        )
        _fail(document, owner, tools, message, DocumentFailure.INTERRUPTED)
        raise
    finally:
        heartbeat.stop()
        with contextlib.suppress(OperationalError):  # an outage: the lease then just expires
            document_let_go(document_id=document.pk, owner=owner)  # if cancelled under us
    _calibrate(document, tools)
    document.refresh_from_db()
    return document


def _calibrate(document: Document, tools: IngestTools) -> None:
    """The knowledge base's match threshold, after it has changed enough; a failure here
    only leaves the old threshold in place, never fails the document."""
    try:
        kb_calibrate_if_changed(kb=document.kb, store=tools.store)
    except (StoreUnavailable, OperationalError) as exc:
        logger.warning("Knowledge base %s not recalibrated: %s", document.kb.slug, exc)
    except Exception:  # the document is indexed either way
        logger.exception("Knowledge base %s not recalibrated", document.kb.slug)


@dataclass(frozen=True)
class _SavedAsset:
    image: ImageData
    file: str  # storage name
    sha256: str


def _pipeline(
    document: Document, generation: int, tools: IngestTools, writer: _ProgressWriter
) -> tuple[ExtractionEnd, list[ImageData], list[ChunkDraft], list[str]]:
    """Extract (sandboxed), chunk and embed, overlapping: pages are chunked and embedded
    in batches while the child process is still reading later pages."""
    # From here on "the embedder" is this knowledge base's own (see kb_embedder_settle).
    tools = replace(tools, embedder=kb_embedder_settle(kb=document.kb, tools=tools))
    chunker = Chunker(
        count_tokens=tools.embedder.count_tokens,
        max_tokens=min(settings.CHUNK_MAX_TOKENS, tools.embedder.max_tokens),
        overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
        count_llm_tokens=tools.count_llm_tokens,
    )
    drafts: list[ChunkDraft] = []
    images: list[ImageData] = []
    vector_ids: list[str] = []
    step = settings.EMBED_BATCH_SIZE * 4
    end: ExtractionEnd | None = None
    with _local_copy(document) as path:
        events = iter_extraction(
            path, kind=document.kind, filename=document.filename, limits=ingest_limits()
        )
        for event in events:
            if isinstance(event, Progress):
                fraction = event.done / event.total if event.total else 0
                stage = DocumentStage.OCR if event.stage == "ocr" else DocumentStage.EXTRACTING
                writer.set(stage, int(_READ_END * fraction), _reading_detail(event))
            elif isinstance(event, ExtractedPage):
                images.extend(event.images)
                drafts.extend(chunker.feed(event.page))
                while len(drafts) - len(vector_ids) >= step:
                    vector_ids += _embed_batch(
                        document, generation, drafts[len(vector_ids) :][:step], tools
                    )
                    writer.check()  # a cancel is noticed between batches too
            else:
                end = event
    if end is None:
        raise IngestError("The extraction ended without a result.")
    if not drafts:
        raise IngestError(_no_text_message(end))
    total = len(drafts)
    while True:
        done = len(vector_ids)
        percent = _READ_END + int((_EMBED_END - _READ_END) * done / total)
        writer.set(DocumentStage.EMBEDDING, percent, f"embedding {done:,} of {total:,} passages")
        if done == total:
            break
        vector_ids += _embed_batch(document, generation, drafts[done:][:step], tools)
    writer.set(DocumentStage.EMBEDDING, 98, f"saving {total:,} passages")
    return end, images, drafts, vector_ids


def _reading_detail(progress: Progress) -> str:
    """ "page 12 of 117" or "1.2 of 3.0 MB"; nothing for a single image."""
    if progress.unit == "bytes":
        return human_bytes_of(progress.done, progress.total)
    if progress.total > 1:
        return f"page {min(progress.done + 1, progress.total):,} of {progress.total:,}"
    return ""


@contextlib.contextmanager
def _local_copy(document: Document) -> Iterator[Path]:
    """The stored original as a local file the sandbox can read (storage may be remote)."""
    tmp_dir = Path(settings.DATA_DIR) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="extract-") as local:
        with default_storage.open(str(document.file.name), "rb") as stored:
            for block in iter(lambda: stored.read(1024 * 1024), b""):
                local.write(block)
        local.flush()
        yield Path(local.name)


def _no_text_message(end: ExtractionEnd) -> str:
    if end.kind == "image":
        return "No text was found in this image, so it cannot be searched."
    if end.kind == "pdf" and not settings.OCR_ENABLED:
        return (
            "This PDF has no text layer, and reading scanned pages (OCR) is turned off "
            "on this server."
        )
    return "No text was found in this document, so it cannot be searched."


def _embed_batch(
    document: Document, generation: int, batch: list[ChunkDraft], tools: IngestTools
) -> list[str]:
    """Embed chunks and write their vectors under this generation; returns their ids."""
    ids = [f"d{document.pk}g{generation}c{d.ordinal}" for d in batch]
    vectors = tools.embedder.encode(
        [d.embed_text for d in batch], batch_size=settings.EMBED_BATCH_SIZE
    )
    tools.store.upsert(
        collection=document.kb.collection_name,
        ids=ids,
        vectors=vectors,
        metadatas=[{"doc": document.pk, "gen": generation, "page": d.page or 0} for d in batch],
    )
    return ids


def _save_assets(document: Document, generation: int, images: list[ImageData]) -> list[_SavedAsset]:
    """Write this generation's image files (hashed here, so the commit only writes rows)."""
    prefix = asset_prefix(document.kb_id, document.pk, generation)
    storage_delete_tree(prefix)  # leftovers of an attempt that died before committing
    saved = []
    for index, image in enumerate(images):
        extension = "png" if image.mime_type == "image/png" else "jpg"
        name = default_storage.save(f"{prefix}/img-{index}.{extension}", ContentFile(image.data))
        saved.append(_SavedAsset(image, name, hashlib.sha256(image.data).hexdigest()))
    return saved


def _commit(
    document: Document,
    owner: str,
    generation: int,
    end: ExtractionEnd,
    drafts: list[ChunkDraft],
    vector_ids: list[str],
    saved: list[_SavedAsset],
) -> None:
    """One transaction swaps the chunk rows and makes the new generation live."""
    source = Asset.Source.UPLOAD if end.kind == "image" else Asset.Source.PDF_IMAGE
    with transaction.atomic():
        ours = Document.objects.filter(
            pk=document.pk, lease_owner=owner, status=DocumentStatus.PROCESSING
        )
        if not ours.exists():
            raise LeaseLost
        Chunk.objects.filter(document=document).delete()
        Asset.objects.filter(document=document).delete()
        assets = Asset.objects.bulk_create(
            Asset(
                kb_id=document.kb_id,
                document=document,
                generation=generation,
                source=source,
                page=a.image.page,
                file=a.file,
                mime_type=a.image.mime_type,
                width=a.image.width,
                height=a.image.height,
                sha256=a.sha256,
                ocr_text=a.image.ocr_text,
            )
            for a in saved
        )
        Chunk.objects.bulk_create(
            (
                Chunk(
                    kb_id=document.kb_id,
                    document=document,
                    vector_id=vector_id,
                    ordinal=draft.ordinal,
                    page=draft.page,
                    heading=draft.heading[:500],
                    text=draft.text,
                    token_count=draft.llm_tokens,
                    asset=assets[draft.image_index] if draft.image_index is not None else None,
                )
                for draft, vector_id in zip(drafts, vector_ids, strict=True)
            ),
            batch_size=500,
        )
        details = {"warnings": list(end.warnings)[:50], "title": end.title[:300]}
        document_mark_ready(
            document_id=document.pk,
            owner=owner,
            generation=generation,
            chunk_count=len(drafts),
            page_count=end.page_count,
            details=details,
        )


def _fail(
    document: Document, owner: str, tools: IngestTools, message: str, failure: str
) -> Document:
    if document.generation:
        message += KEPT
    document_mark_failed(document_id=document.pk, owner=owner, message=message, failure=failure)
    generation_discard(document=document, generation=document.generation + 1, store=tools.store)
    document.refresh_from_db()
    return document


class _ProgressWriter:
    """Writes stage, percent and detail to the Document at most twice a second (a new stage
    at once); each write is also the checkpoint where a cancelled, deleted or taken-over
    document stops."""

    def __init__(self, document_id: int, owner: str, callback: ProgressCallback | None) -> None:
        self.document_id = document_id
        self.owner = owner
        self.callback = callback
        self.last_write = 0.0
        self.reported = ("", -1)
        self.pending = ("", -1, "")
        self.written = ("", -1, "")

    def set(self, stage: str, percent: int, detail: str = "") -> None:
        percent = max(0, min(99, percent))
        if self.callback is not None and (stage, percent) != self.reported:
            self.callback(stage, percent)
        self.reported = (stage, percent)
        self.pending = (stage, percent, detail)
        if stage != self.written[0]:
            self._flush()
        else:
            self.check()

    def check(self) -> None:
        """A checkpoint: write what is new (or just renew the lease) if half a second has
        passed; LeaseLost if the document is no longer ours."""
        if time.monotonic() - self.last_write >= 0.5:
            self._flush()

    def _flush(self) -> None:
        self.last_write = time.monotonic()
        fields: dict = {}
        if self.pending != self.written:
            stage, percent, detail = self.pending
            fields = {"stage": stage, "progress": percent, "detail": detail}
        extended = document_lease_extend(document_id=self.document_id, owner=self.owner, **fields)
        if not extended:
            raise LeaseLost
        self.written = self.pending


class _Heartbeat(threading.Thread):
    """Keeps the lease alive through long single steps (one big OCR page, one batch)."""

    def __init__(self, document_id: int, owner: str) -> None:
        super().__init__(daemon=True, name=f"lease-{document_id}")
        self.document_id = document_id
        self.owner = owner
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = settings.WORKER_LEASE_SECONDS / 3
        try:
            while not self.stopped.wait(interval):
                try:
                    document_heartbeat(document_id=self.document_id, owner=self.owner)
                except OperationalError as exc:
                    logger.warning("Lease heartbeat failed: %s", exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)

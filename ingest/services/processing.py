"""document_ingest: one document through extract -> (OCR) -> chunk -> embed -> store.

Consistency rule: the database decides what is live. New vectors are written under a
new index generation first; one transaction then swaps the document's chunk rows and
bumps its generation; only after that are the old generation's vectors deleted.
Retrieval ignores vectors without a chunk row, so a crash at any point leaves either
the old version or the new one searchable, never half of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ingest.models import Asset, Chunk, Document, DocumentStage, DocumentStatus
from ingest.pipeline.chunk import Chunker
from ingest.pipeline.embed import Embedder
from ingest.pipeline.sandbox import ExtractedPage, iter_extraction
from ingest.pipeline.types import ChunkDraft, Extraction, ImageData, IngestError, Limits, Progress
from ingest.store import StoreUnavailable, VectorStore

from .files import asset_prefix, storage_delete_tree

logger = logging.getLogger("docent.ingest")
ProgressCallback = Callable[[str, int], None]  # (stage, percent 0-100)

# Share of the progress bar each stage owns, in percent.
_EXTRACT_END, _CHUNK_END, _EMBED_END = 40, 45, 97


class LeaseLost(Exception):
    """Another worker took the document over, or it was deleted, while we worked."""


@dataclass(frozen=True)
class IngestTools:
    embedder: Embedder
    store: VectorStore
    count_llm_tokens: Callable[[str], int]


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


def worker_identity() -> str:
    """host:pid:start-time, so a lease of a dead local process is recognisable at once."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start_ticks(pid)}"


def process_start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def document_ingest(
    *,
    document_id: int,
    owner: str,
    tools: IngestTools,
    on_progress: ProgressCallback | None = None,
) -> Document | None:
    """Process one queued document. Returns it in its final state, or None if not ours."""
    document = _claim(document_id, owner)
    if document is None:
        return None
    if document.attempts > settings.INGEST_MAX_ATTEMPTS:
        return _fail(document, owner, tools.store, "Gave up after repeated attempts.")
    writer = _ProgressWriter(document.pk, owner, on_progress)
    heartbeat = _Heartbeat(document.pk, owner)
    heartbeat.start()
    try:
        generation = document.generation + 1
        extraction, drafts, vector_ids = _pipeline(document, generation, tools, writer)
        asset_files = _save_assets(document, generation, extraction)
        _commit(document, owner, generation, extraction, drafts, vector_ids, asset_files, tools)
    except IngestError as exc:
        return _fail(document, owner, tools.store, str(exc))
    except LeaseLost:
        logger.info("Document %s was deleted or taken over while processing", document_id)
        _discard_generation(document, document.generation + 1, tools.store)
        return None
    except (StoreUnavailable, OperationalError) as exc:
        logger.warning("Document %s: transient failure, will retry: %s", document_id, exc)
        _release_for_retry(document, owner, f"Temporary problem, will retry: {exc}")
        raise
    except Exception as exc:
        logger.exception("Document %s: unexpected failure", document_id)
        _fail(document, owner, tools.store, f"Internal error ({type(exc).__name__}: {exc}).")
        raise
    finally:
        heartbeat.stop()
    document.refresh_from_db()
    return document


def _claim(document_id: int, owner: str) -> Document | None:
    now = timezone.now()
    claimable = Q(status=DocumentStatus.QUEUED) | Q(
        status=DocumentStatus.PROCESSING, lease_expires_at__lt=now
    )
    updated = (
        Document.objects.filter(pk=document_id)
        .filter(claimable)
        .update(
            status=DocumentStatus.PROCESSING,
            stage=DocumentStage.EXTRACTING,
            progress=0,
            error="",
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=settings.WORKER_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            started_at=now,
            updated_at=now,
        )
    )
    return Document.objects.filter(pk=document_id).first() if updated else None


def _pipeline(
    document: Document, generation: int, tools: IngestTools, writer: _ProgressWriter
) -> tuple[Extraction, list[ChunkDraft], list[str]]:
    """Extract (sandboxed), chunk and embed, overlapping: pages are chunked and embedded
    in batches while the child process is still reading later pages."""
    chunker = Chunker(
        count_tokens=tools.embedder.count_tokens,
        max_tokens=min(settings.CHUNK_MAX_TOKENS, tools.embedder.max_tokens),
        overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
    )
    drafts: list[ChunkDraft] = []
    images: list[ImageData] = []
    vector_ids: list[str] = []
    step = settings.EMBED_BATCH_SIZE * 4
    info: Extraction | None = None
    with _local_copy(document) as path:
        events = iter_extraction(
            path, kind=document.kind, filename=document.filename, limits=ingest_limits()
        )
        for event in events:
            if isinstance(event, Progress):
                fraction = event.done / event.total if event.total else 0
                stage = DocumentStage.OCR if event.stage == "ocr" else DocumentStage.EXTRACTING
                writer.set(stage, int(_EXTRACT_END * fraction))
            elif isinstance(event, ExtractedPage):
                images.extend(event.images)
                drafts.extend(chunker.feed(event.page))
                while len(drafts) - len(vector_ids) >= step:
                    vector_ids += _embed_batch(
                        document, generation, drafts[len(vector_ids) :][:step], tools
                    )
            else:
                info = event
    assert info is not None
    if not drafts:
        raise IngestError(_no_text_message(info))
    writer.set(DocumentStage.EMBEDDING, _CHUNK_END)
    while len(vector_ids) < len(drafts):
        vector_ids += _embed_batch(document, generation, drafts[len(vector_ids) :][:step], tools)
        done = len(vector_ids) / len(drafts)
        writer.set(DocumentStage.EMBEDDING, _CHUNK_END + int((_EMBED_END - _CHUNK_END) * done))
    extraction = Extraction(
        info.kind, info.page_count, (), tuple(images), info.title, info.warnings
    )
    return extraction, drafts, vector_ids


@contextlib.contextmanager
def _local_copy(document: Document) -> Iterator[Path]:
    """The stored original as a local file the sandbox can read (storage may be remote)."""
    tmp_dir = Path(settings.DATA_DIR) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="extract-") as local:
        with default_storage.open(document.file.name, "rb") as stored:
            for block in iter(lambda: stored.read(1024 * 1024), b""):
                local.write(block)
        local.flush()
        yield Path(local.name)


def _no_text_message(extraction: Extraction) -> str:
    if extraction.kind == "image":
        return "No text was found in this image, so it cannot be searched."
    if extraction.kind == "pdf" and not settings.OCR_ENABLED:
        return "The PDF has no text layer and OCR is turned off (OCR_ENABLED)."
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


def _save_assets(document: Document, generation: int, extraction: Extraction) -> list[str]:
    prefix = asset_prefix(document.kb_id, document.pk, generation)
    storage_delete_tree(prefix)  # leftovers of an attempt that died before committing
    names = []
    for index, image in enumerate(extraction.images):
        extension = "png" if image.mime_type == "image/png" else "jpg"
        names.append(
            default_storage.save(f"{prefix}/img-{index}.{extension}", ContentFile(image.data))
        )
    return names


def _commit(
    document: Document,
    owner: str,
    generation: int,
    extraction: Extraction,
    drafts: list[ChunkDraft],
    vector_ids: list[str],
    asset_files: list[str],
    tools: IngestTools,
) -> None:
    import hashlib

    with transaction.atomic():
        if not Document.objects.filter(pk=document.pk, lease_owner=owner).exists():
            raise LeaseLost
        Chunk.objects.filter(document=document).delete()
        Asset.objects.filter(document=document).delete()
        assets = Asset.objects.bulk_create(
            Asset(
                kb_id=document.kb_id,
                document=document,
                generation=generation,
                source=Asset.Source.UPLOAD
                if extraction.kind == "image"
                else Asset.Source.PDF_IMAGE,
                page=image.page,
                file=name,
                mime_type=image.mime_type,
                width=image.width,
                height=image.height,
                sha256=hashlib.sha256(image.data).hexdigest(),
                ocr_text=image.ocr_text,
            )
            for image, name in zip(extraction.images, asset_files, strict=True)
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
                    token_count=tools.count_llm_tokens(draft.text),
                    asset=assets[draft.image_index] if draft.image_index is not None else None,
                )
                for draft, vector_id in zip(drafts, vector_ids, strict=True)
            ),
            batch_size=500,
        )
        now = timezone.now()
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.READY,
            stage=DocumentStage.READY,
            progress=100,
            error="",
            generation=generation,
            chunk_count=len(drafts),
            page_count=extraction.page_count,
            details={"warnings": list(extraction.warnings)[:50], "title": extraction.title[:300]},
            lease_owner="",
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    _discard_other_generations(document, generation, tools.store)


def _discard_other_generations(document: Document, live: int, store: VectorStore) -> None:
    """Delete vectors and asset files of every generation except the live one."""
    try:
        store.delete_document(
            collection=document.kb.collection_name, document_id=document.pk, keep_generation=live
        )
    except StoreUnavailable:
        logger.warning("Old vectors of document %s are left for reconcile", document.pk)
    prefix = asset_prefix(document.kb_id, document.pk)
    try:
        folders, _ = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for folder in folders:
        if folder != f"g{live}":
            storage_delete_tree(f"{prefix}/{folder}")


def _discard_generation(document: Document, generation: int, store: VectorStore) -> None:
    try:
        store.delete_document(
            collection=document.kb.collection_name,
            document_id=document.pk,
            keep_generation=document.generation,
        )
    except StoreUnavailable:
        logger.warning("Partial vectors of document %s are left for reconcile", document.pk)
    storage_delete_tree(asset_prefix(document.kb_id, document.pk, generation))


def _fail(document: Document, owner: str, store: VectorStore, message: str) -> Document:
    if document.generation:
        message += " The previously indexed version stays searchable."
    now = timezone.now()
    Document.objects.filter(pk=document.pk, lease_owner=owner).update(
        status=DocumentStatus.FAILED,
        stage=DocumentStage.FAILED,
        error=message,
        lease_owner="",
        lease_expires_at=None,
        finished_at=now,
        updated_at=now,
    )
    _discard_generation(document, document.generation + 1, store)
    document.refresh_from_db()
    return document


def _release_for_retry(document: Document, owner: str, message: str) -> None:
    # Leave the lease expired rather than re-queueing here: the recovery sweep re-queues
    # it with a delay, and counts the attempt, so an outage can't spin forever.
    Document.objects.filter(pk=document.pk, lease_owner=owner).update(
        error=message[:1000], lease_expires_at=timezone.now()
    )


class _ProgressWriter:
    """Writes stage and percent to the Document at most twice a second."""

    def __init__(self, document_id: int, owner: str, callback: ProgressCallback | None) -> None:
        self.document_id = document_id
        self.owner = owner
        self.callback = callback
        self.last_write = 0.0
        self.last = ("", -1)

    def set(self, stage: str, percent: int) -> None:
        percent = max(0, min(99, percent))
        if (stage, percent) == self.last:
            return
        if self.callback is not None:
            self.callback(stage, percent)
        now = time.monotonic()
        if stage == self.last[0] and now - self.last_write < 0.5:
            return
        self.last, self.last_write = (stage, percent), now
        updated = Document.objects.filter(pk=self.document_id, lease_owner=self.owner).update(
            stage=stage,
            progress=percent,
            lease_expires_at=timezone.now() + timedelta(seconds=settings.WORKER_LEASE_SECONDS),
            updated_at=timezone.now(),
        )
        if not updated:
            raise LeaseLost


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
                    Document.objects.filter(pk=self.document_id, lease_owner=self.owner).update(
                        lease_expires_at=timezone.now()
                        + timedelta(seconds=settings.WORKER_LEASE_SECONDS)
                    )
                except OperationalError as exc:
                    logger.warning("Lease heartbeat failed: %s", exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)

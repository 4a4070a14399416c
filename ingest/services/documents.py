"""Uploading, re-indexing and deleting documents, and knowledge-base housekeeping."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from ingest.models import (
    Document,
    DocumentFailure,
    DocumentStage,
    DocumentStatus,
    KnowledgeBase,
)
from ingest.pipeline.detect import SNIFF_BYTES, detect_kind, sanitize_filename
from ingest.pipeline.types import IngestError, size_over_limit
from ingest.store import StoreUnavailable, VectorStore

from .files import asset_prefix, storage_delete_tree
from .lifecycle import document_requeue
from .queue import document_enqueue

logger = logging.getLogger("docent.ingest")
_COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool  # False when the same bytes were already in this knowledge base


class KnowledgeBaseExists(ValueError):
    """Another knowledge base already has that name (names are unique, ignoring case)."""


def kb_name_clean(name: str) -> str:
    """A knowledge base name as stored: whitespace collapsed, at most 100 characters."""
    cleaned = " ".join(name.split())[:100]
    if not cleaned:
        raise ValueError("A knowledge base needs a name.")
    return cleaned


def kb_get_or_create(*, name: str) -> KnowledgeBase:
    name = kb_name_clean(name)
    kb = KnowledgeBase.objects.filter(name__iexact=name).first()
    if kb is not None:
        return kb
    try:
        with transaction.atomic():
            return KnowledgeBase.objects.create(name=name)
    except IntegrityError:
        return KnowledgeBase.objects.get(name__iexact=name)


def kb_create(*, name: str, members=None, **fields) -> KnowledgeBase:
    """A new knowledge base; KnowledgeBaseExists when the name is taken (ignoring case)."""
    name = kb_name_clean(name)
    if KnowledgeBase.objects.filter(name__iexact=name).exists():
        raise KnowledgeBaseExists("A knowledge base with that name already exists.")
    try:
        with transaction.atomic():
            kb = KnowledgeBase.objects.create(name=name)
    except IntegrityError as exc:
        raise KnowledgeBaseExists("A knowledge base with that name already exists.") from exc
    return kb_update(kb=kb, members=members, **fields)


def kb_update(
    *, kb: KnowledgeBase, name: str | None = None, members=None, **fields
) -> KnowledgeBase:
    """Rename a knowledge base or change its settings; its slug (and URLs) stay the same.

    fields: any of KnowledgeBase.SETTINGS, checked by the model's own validators (the
    ValueError names the first problem). None clears a setting that may be blank and
    leaves the others as they are. members: the users who may read it.
    """
    unknown = set(fields) - set(KnowledgeBase.SETTINGS)
    if unknown:
        raise ValueError(f"Unknown knowledge base settings: {', '.join(sorted(unknown))}")
    if name is not None:
        name = kb_name_clean(name)
        if KnowledgeBase.objects.filter(name__iexact=name).exclude(pk=kb.pk).exists():
            raise KnowledgeBaseExists("A knowledge base with that name already exists.")
        kb.name = name
    for field, value in fields.items():
        if value is not None or KnowledgeBase._meta.get_field(field).null:
            setattr(kb, field, value)
    try:
        kb.full_clean(exclude=["slug", "members"], validate_unique=False)
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        label = (
            ""
            if field == "__all__"
            else getattr(KnowledgeBase._meta.get_field(field), "verbose_name", field)
        )
        raise ValueError(f"{str(label).capitalize()}: {problems[0]}".lstrip(": ")) from exc
    kb.save()
    if members is not None:
        kb.members.set(members)
    return kb


def document_create(
    *,
    kb: KnowledgeBase,
    filename: str,
    content: BinaryIO | File,
    enqueue: bool = True,
    uploaded_by=None,
) -> UploadResult:
    """Store an upload and queue it for ingestion; reject bad input as a failed Document.

    `uploaded_by`: the signed-in user uploading it, if a person (not a key or the CLI) is.

    The same bytes uploaded twice into one knowledge base give back the first stored
    document (re-queued if it failed in a way trying again can fix). An upload refused on
    arrival keeps no file and is never "the same document" as a later upload; the same
    name and bytes refused again replace the earlier refusal. Nothing here parses the
    file: that is the worker's job.
    """
    display = sanitize_filename(filename)
    tmp_dir = Path(settings.DATA_DIR) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=True) as spool:
        sha256, size, head = _spool(content, spool, limit=settings.MAX_UPLOAD_BYTES)
        spool.flush()
        existing = Document.objects.filter(kb=kb, sha256=sha256).exclude(file="").first()
        if existing is not None:
            if existing.status == DocumentStatus.FAILED and existing.retryable:
                document_reindex(document=existing)
                existing.refresh_from_db()
            return UploadResult(existing, created=False)

        error = ""
        kind = mime = ""
        if size == 0:
            error = "This file is empty."
        elif size > settings.MAX_UPLOAD_BYTES:
            error = size_over_limit(size, settings.MAX_UPLOAD_BYTES)
        else:
            try:
                detected = detect_kind(head, display)
                kind, mime = detected.kind, detected.mime_type
            except IngestError as exc:
                error = str(exc)
        document = Document(
            kb=kb,
            filename=display,
            sha256=sha256,
            size_bytes=size,
            kind=kind,
            mime_type=mime,
            uploaded_by=uploaded_by,
        )
        if error:
            document.status = DocumentStatus.FAILED
            document.stage = DocumentStage.FAILED
            document.error = error
            document.failure = DocumentFailure.REJECTED
            document.finished_at = timezone.now()
        else:
            spool.seek(0)
            document.file.save(f"{sha256}", File(spool), save=False)
        try:
            with transaction.atomic():
                if error:  # the same refusal again replaces the earlier one
                    Document.objects.filter(
                        kb=kb, sha256=sha256, filename=display, file=""
                    ).delete()
                document.save()
                if enqueue and not error:
                    document_enqueue(document=document)
        except IntegrityError:
            # A concurrent upload of the same bytes won the race; theirs is the document.
            if document.file and not Document.objects.filter(file=document.file.name).exists():
                document.file.delete(save=False)
            theirs = Document.objects.exclude(file="").get(kb=kb, sha256=sha256)
            return UploadResult(theirs, created=False)
    if error:
        logger.info("Rejected upload %r: %s", display, error)
    return UploadResult(document, created=True)


def _spool(content: BinaryIO | File, spool, *, limit: int) -> tuple[str, int, bytes]:
    """Copy the upload to the spool file, hashing all of it; stop writing past the limit."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    chunks = (
        content.chunks()
        if hasattr(content, "chunks")
        else iter(lambda: content.read(_COPY_BLOCK), b"")
    )
    for block in chunks:
        digest.update(block)
        if len(head) < SNIFF_BYTES:
            head += block[: SNIFF_BYTES - len(head)]
        if size + len(block) <= limit:
            spool.write(block)
        size += len(block)
    return digest.hexdigest(), size, head


def document_reindex(*, document: Document) -> Document:
    """Queue a document to be processed again; its current chunks stay live until then.

    IngestError (worded for people) when that can't succeed: see Document.retryable.
    """
    if not document.retryable:
        raise IngestError(_not_retryable(document))
    with transaction.atomic():
        document_requeue(document_id=document.pk, fresh=True)
        document_enqueue(document=document)
    document.refresh_from_db()
    return document


def _not_retryable(document: Document) -> str:
    if document.status in (DocumentStatus.QUEUED, DocumentStatus.PROCESSING):
        return "This document is already waiting or being indexed."
    if not document.file:
        return "This upload was refused when it arrived, so there is nothing to re-index."
    if document.failure == DocumentFailure.UNREADABLE:
        return "Re-indexing would fail the same way; upload a corrected file instead."
    return "This document is still stopping; try again in a few seconds."


TAG_MAX_CHARS = 64


def document_tag_set(*, document: Document, tag: str) -> Document:
    """Label a document for filtering questions: spaces collapsed, "" removes the label;
    IngestError for one over TAG_MAX_CHARS characters."""
    tag = " ".join(tag.split())
    if len(tag) > TAG_MAX_CHARS:
        raise IngestError(f"A tag may be at most {TAG_MAX_CHARS} characters.")
    Document.objects.filter(pk=document.pk).update(tag=tag)
    document.tag = tag
    return document


def document_delete(*, document: Document, store: VectorStore) -> None:
    """Remove a document's rows, vectors and files.

    Rows go first, in one transaction: retrieval trusts only vectors with a row, so a
    vector left behind by a Chroma outage is invisible, and `kb_reconcile` sweeps it.
    """
    kb_id, doc_id = document.kb_id, document.pk
    collection = document.kb.collection_name
    file_name = document.file.name if document.file else ""
    with transaction.atomic():
        document.delete()
    try:
        store.delete_document(collection=collection, document_id=doc_id)
    except StoreUnavailable:
        logger.warning("Chroma unreachable; vectors of document %s are left for reconcile", doc_id)
    if file_name and not Document.objects.filter(file=file_name).exists():
        default_storage.delete(file_name)
    storage_delete_tree(asset_prefix(kb_id, doc_id))


def kb_delete(*, kb: KnowledgeBase, store: VectorStore) -> None:
    """Delete a knowledge base with every document, vector and file in it."""
    kb_id = kb.pk
    with transaction.atomic():
        kb.delete()
    store.drop(collection=kb.collection_name)
    storage_delete_tree(f"kb/{kb_id}")

"""Putting things right after a crash: stale leases, lost tasks, stray vectors."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ingest.models import Chunk, Document, DocumentFailure, DocumentStatus, KnowledgeBase
from ingest.store import VectorStore

from .documents import document_reindex
from .generations import generation_discard
from .lifecycle import document_mark_failed, document_requeue, lease_owner_alive
from .queue import document_enqueue

logger = logging.getLogger("docent.ingest")


@dataclass(frozen=True)
class ReconcileReport:
    kb_id: int
    vectors: int
    chunks: int
    removed_vectors: int
    missing_vectors: int  # chunk rows whose vector is gone: their documents are re-queued


def documents_recover(*, store: VectorStore) -> list[int]:
    """Re-queue (or fail, past INGEST_MAX_ATTEMPTS) documents whose worker went away.

    A lease is dead when it has expired, or at once when its owner is a process on
    this host that no longer exists. Returns the ids acted on.
    """
    now = timezone.now()
    candidates = Document.objects.filter(status=DocumentStatus.PROCESSING).filter(
        Q(lease_expires_at__lt=now) | Q(lease_owner__startswith=f"{socket.gethostname()}:")
    )
    acted: list[int] = []
    for document in candidates:
        live_lease = document.lease_expires_at and document.lease_expires_at >= now
        if live_lease and lease_owner_alive(document.lease_owner):
            continue
        if _recover_one(document, store):
            acted.append(document.pk)
    acted.extend(_requeue_lost_tasks(now))
    return acted


def _recover_one(document: Document, store: VectorStore) -> bool:
    stage = document.get_stage_display().lower()
    owner = document.lease_owner
    with transaction.atomic():
        if document.attempts >= settings.INGEST_MAX_ATTEMPTS:
            message = (
                f"Processing stopped unexpectedly {document.attempts} times (last during "
                f"{stage}); giving up. The document may be too large for this worker."
            )
            if document.generation:
                message += " The previously indexed version stays searchable."
            acted = document_mark_failed(
                document_id=document.pk,
                owner=owner,
                message=message,
                failure=DocumentFailure.INTERRUPTED,
            )
        else:
            message = (
                f"Processing stopped unexpectedly during {stage}; retrying "
                f"(attempt {document.attempts + 1} of {settings.INGEST_MAX_ATTEMPTS})."
            )
            acted = document_requeue(document_id=document.pk, message=message, from_owner=owner)
            if acted:
                document_enqueue(document=document)
    if not acted:
        return False
    generation_discard(document=document, generation=document.generation + 1, store=store)
    logger.warning("Recovered document %s (%s): %s", document.pk, document.filename, message)
    return True


def _requeue_lost_tasks(now) -> list[int]:
    """Queued documents whose task is gone or stuck in a dead worker get a fresh task."""
    from django_tasks_db.models import DBTaskResult

    cutoff = now - timedelta(seconds=settings.WORKER_LEASE_SECONDS * 2)
    acted = []
    for document in Document.objects.filter(status=DocumentStatus.QUEUED, updated_at__lt=cutoff):
        task = (
            DBTaskResult.objects.filter(id=document.task_id).first() if document.task_id else None
        )
        if task is not None and task.status == "READY":
            continue
        if (
            task is not None
            and task.status == "RUNNING"
            and task.started_at
            and task.started_at > cutoff
        ):
            continue
        document_enqueue(document=document)
        acted.append(document.pk)
    return acted


def kb_reconcile(*, kb: KnowledgeBase, store: VectorStore) -> ReconcileReport:
    """Make Chroma agree with the database for one knowledge base.

    Vectors without a chunk row (left by a crash or an outage) are deleted; chunk rows
    whose vector is missing send their document back to the queue.
    """
    vector_ids = store.ids(collection=kb.collection_name)
    rows = dict(Chunk.objects.filter(kb=kb).values_list("vector_id", "document_id"))
    busy = set(
        Document.objects.filter(kb=kb, status=DocumentStatus.PROCESSING).values_list(
            "pk", flat=True
        )
    )
    stray = [vid for vid in vector_ids - rows.keys() if _document_of(vid) not in busy]
    if stray:
        store.delete_ids(collection=kb.collection_name, ids=stray)
    missing_docs = {rows[vid] for vid in rows.keys() - vector_ids}
    for document in Document.objects.filter(pk__in=missing_docs).exclude(
        status__in=[DocumentStatus.QUEUED, DocumentStatus.PROCESSING]
    ):
        if document.retryable:  # a file that can't be indexed would only fail again
            document_reindex(document=document)
    return ReconcileReport(
        kb.pk, len(vector_ids), len(rows), len(stray), len(rows.keys() - vector_ids)
    )


def _document_of(vector_id: str) -> int:
    try:
        return int(vector_id[1:].split("g", 1)[0])
    except ValueError:
        return -1

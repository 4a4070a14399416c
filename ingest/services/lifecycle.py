"""A document's life: every change of its status, stage, progress and lease is one of these.

    queued --claim--> processing --mark_ready--> ready
       |                 |  ^ lease_extend (progress), heartbeat (lease only)
       |                 |  '-- release (a transient failure: recovery re-queues it later)
       |                 '--mark_failed--> failed
       '--cancel--> failed <--cancel-- processing (the worker stops at its next checkpoint,
                                        then let_go drops its lease)
    processing (lease dead) / ready / failed --requeue--> queued

Each transition is a single conditional UPDATE: a worker whose lease was taken over, or
whose document was deleted, changes nothing (the functions say so by returning False).
Workers are named host:pid:start-time, so a lease of a dead process on this host is
recognised at once.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ingest.models import Document, DocumentFailure, DocumentStage, DocumentStatus

CANCELLED = "Cancelled. Re-index to start again."
KEPT = " The previously indexed version stays searchable."


def worker_identity() -> str:
    """host:pid:start-time of this process, the owner written into the leases it holds."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def lease_owner_alive(owner: str) -> bool:
    """False only when `owner` is provably a process of this host that no longer runs."""
    try:
        host, pid, ticks = owner.split(":")
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return _start_ticks(int(pid)) == ticks


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.WORKER_LEASE_SECONDS)


def document_claim(*, document_id: int, owner: str) -> Document | None:
    """Take a queued document (or one whose lease expired) for processing; None if taken."""
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
            progress_detail="",
            error="",
            failure=DocumentFailure.NONE,
            lease_owner=owner,
            lease_expires_at=_lease_end(),
            attempts=F("attempts") + 1,
            started_at=now,
            updated_at=now,
        )
    )
    return Document.objects.filter(pk=document_id).first() if updated else None


def document_lease_extend(
    *,
    document_id: int,
    owner: str,
    stage: str | None = None,
    progress: int | None = None,
    detail: str | None = None,
) -> bool:
    """Keep the lease alive, and say how far processing got (progress in percent, detail
    in words). False once the document is no longer ours to process: taken over, deleted
    or cancelled; the worker then stops."""
    fields: dict[str, object] = {"lease_expires_at": _lease_end()}
    if stage is not None:
        fields.update(stage=stage, updated_at=timezone.now())
    if progress is not None:
        fields["progress"] = progress
    if detail is not None:
        fields["progress_detail"] = detail[:100]
    updated = Document.objects.filter(
        pk=document_id, lease_owner=owner, status=DocumentStatus.PROCESSING
    ).update(**fields)
    return bool(updated)


def document_heartbeat(*, document_id: int, owner: str) -> None:
    """Keep this worker's lease alive through one long step, also while a cancelled document
    winds down (so it can't be re-queued until this worker has let go)."""
    Document.objects.filter(pk=document_id, lease_owner=owner).update(lease_expires_at=_lease_end())


def document_cancel(*, document_id: int) -> bool:
    """Stop a queued or processing document; False if it is neither.

    A queued one is failed at once. A processing one is failed too, but keeps its lease:
    its worker notices at the next progress checkpoint, discards what it wrote and lets go
    (document_let_go); until then re-indexing waits, so two runs never overlap.
    """
    document = Document.objects.filter(pk=document_id).only("generation").first()
    if document is None:
        return False
    now = timezone.now()
    updated = Document.objects.filter(
        pk=document_id, status__in=[DocumentStatus.QUEUED, DocumentStatus.PROCESSING]
    ).update(
        status=DocumentStatus.FAILED,
        stage=DocumentStage.FAILED,
        progress_detail="",
        error=CANCELLED + (KEPT if document.generation else ""),
        failure=DocumentFailure.CANCELLED,
        finished_at=now,
        updated_at=now,
    )
    return bool(updated)


def document_let_go(*, document_id: int, owner: str) -> None:
    """The worker has stopped processing a document cancelled under it: drop its lease."""
    Document.objects.filter(pk=document_id, lease_owner=owner, status=DocumentStatus.FAILED).update(
        lease_owner="", lease_expires_at=None
    )


def document_mark_ready(
    *,
    document_id: int,
    owner: str,
    generation: int,
    chunk_count: int,
    page_count: int | None,
    details: dict,
) -> bool:
    """The new generation is live. Run it in the transaction that swapped the chunks."""
    finished = Document.objects.filter(
        pk=document_id, lease_owner=owner, status=DocumentStatus.PROCESSING
    )
    return _finish(
        finished,
        status=DocumentStatus.READY,
        stage=DocumentStage.READY,
        progress=100,
        progress_detail="",
        error="",
        failure=DocumentFailure.NONE,
        generation=generation,
        chunk_count=chunk_count,
        page_count=page_count,
        details=details,
    )


def document_mark_failed(*, document_id: int, owner: str, message: str, failure: str) -> bool:
    """Processing failed, with its reason (for the person who uploaded it) and its class
    (a DocumentFailure: whether trying again can help)."""
    finished = Document.objects.filter(
        pk=document_id, status=DocumentStatus.PROCESSING, lease_owner=owner
    )
    return _finish(
        finished,
        status=DocumentStatus.FAILED,
        stage=DocumentStage.FAILED,
        progress_detail="",
        error=message,
        failure=failure,
    )


def _finish(documents, **fields: object) -> bool:
    """End processing: write `fields`, drop the lease, stamp the time; False if not ours."""
    now = timezone.now()
    updated = documents.update(
        **fields, lease_owner="", lease_expires_at=None, finished_at=now, updated_at=now
    )
    return bool(updated)


def document_release(*, document_id: int, owner: str, message: str) -> None:
    """Give the lease up after a transient failure (an outage): recovery re-queues it.

    The lease is left expired rather than re-queued here, so that recovery waits and
    counts the attempt, and an outage can't spin forever.
    """
    Document.objects.filter(
        pk=document_id, lease_owner=owner, status=DocumentStatus.PROCESSING
    ).update(error=message[:1000], lease_expires_at=timezone.now())


def document_requeue(
    *, document_id: int, message: str = "", from_owner: str | None = None, fresh: bool = False
) -> bool:
    """Back in the queue: re-indexed by a person (`fresh`: attempts start over) or recovered
    from a dead worker (`from_owner`: only while that worker's lease is still the one)."""
    documents = Document.objects.filter(pk=document_id)
    if from_owner is not None:
        documents = documents.filter(status=DocumentStatus.PROCESSING, lease_owner=from_owner)
    fields: dict[str, object] = {"attempts": 0} if fresh else {}
    updated = documents.update(
        status=DocumentStatus.QUEUED,
        stage=DocumentStage.QUEUED,
        progress=0,
        progress_detail="",
        error=message,
        failure=DocumentFailure.NONE,
        lease_owner="",
        lease_expires_at=None,
        updated_at=timezone.now(),
        **fields,
    )
    return bool(updated)

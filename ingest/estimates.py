"""Where documents stand in the ingest queue and when they should be ready (read-only).

`queue_snapshot()` reads the whole queue once (four queries, whatever the number of
documents asked about); the API keeps one per request, so a page of 100 documents costs
the same as one. Estimates come from measured throughput: the last finished documents'
bytes and seconds (`finished_at - started_at`), by kind, as a fixed overhead plus bytes
per second. Nothing measured yet: no estimate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone

from ingest.models import Document, DocumentStatus
from ingest.services.queue import SMALL, lane_for_size

_SAMPLES = 50  # recently finished documents the throughput is measured on
_MAX_OVERHEAD = 5.0  # seconds: the fixed part of a document's time is at most this


@dataclass(frozen=True)
class _Throughput:
    overhead: float  # seconds every document takes, whatever its size
    rates: dict[str, float]  # bytes per second after the overhead, by kind; "" for all kinds

    def seconds(self, kind: str, size_bytes: int) -> float:
        rate = self.rates.get(kind) or self.rates[""]
        return self.overhead + size_bytes / rate


@dataclass
class QueueSnapshot:
    """Queue positions and estimates for every queued or processing document at one moment."""

    positions: dict[int, int] = field(default_factory=dict)  # queued id -> 1-based place
    etas: dict[int, float] = field(default_factory=dict)  # id -> seconds until ready

    def queue_position(self, document: Document) -> int | None:
        """1-based place among queued documents in the order workers take them; None unless
        queued."""
        if document.status != DocumentStatus.QUEUED:
            return None
        return self.positions.get(document.pk)

    def eta_seconds(self, document: Document) -> int | None:
        """Estimated seconds until the document is ready; None unless queued or processing,
        or when no finished document has been measured yet."""
        if document.status not in (DocumentStatus.QUEUED, DocumentStatus.PROCESSING):
            return None
        eta = self.etas.get(document.pk)
        return None if eta is None else max(1, round(eta))


def queue_snapshot() -> QueueSnapshot:
    """The queue as it is now: positions of queued documents and estimates for all of them."""
    queued = list(
        Document.objects.filter(status=DocumentStatus.QUEUED).values_list(
            "pk", "task_id", "kind", "size_bytes"
        )
    )
    order = _task_order([task_id for _, task_id, _, _ in queued])
    queued.sort(key=lambda row: (*order.get(row[1], (1, 0, _LATEST)), row[0]))
    snapshot = QueueSnapshot(positions={row[0]: place for place, row in enumerate(queued, 1)})
    throughput = _throughput()
    if throughput is None:
        return snapshot
    now = timezone.now()
    busy = {SMALL: 0.0, "default": 0.0}  # seconds of work before a lane is free, per lane
    processing = Document.objects.filter(status=DocumentStatus.PROCESSING).values_list(
        "pk", "kind", "size_bytes", "progress", "started_at"
    )
    for pk, kind, size, progress, started in processing:
        elapsed = (now - started).total_seconds() if started else 0.0
        if progress >= 10 and elapsed > 0:
            left = elapsed * (100 - progress) / progress  # its own pace so far
        else:
            left = max(1.0, throughput.seconds(kind, size) - elapsed)
        snapshot.etas[pk] = left
        busy[lane_for_size(size)] += left
    for pk, _, kind, size in queued:
        lane = lane_for_size(size)
        busy[lane] += throughput.seconds(kind, size)
        snapshot.etas[pk] = busy[lane]
    return snapshot


_LATEST = datetime.max.replace(tzinfo=UTC)  # a queued document without a task goes last


def _task_order(task_ids: list[str]) -> dict[str, tuple[int, int, datetime]]:
    """task id -> its sort key in the order django-tasks' workers take tasks."""
    from django_tasks_db.models import DBTaskResult

    ids = []
    for task_id in task_ids:
        try:
            ids.append(uuid.UUID(task_id))
        except ValueError:
            continue
    rows = DBTaskResult.objects.filter(id__in=ids).values_list("id", "priority", "enqueued_at")
    return {str(task_id): (0, -priority, enqueued) for task_id, priority, enqueued in rows}


def _throughput() -> _Throughput | None:
    """Overhead and bytes per second from the last finished documents; None if none yet."""
    rows = list(
        Document.objects.filter(
            status=DocumentStatus.READY, started_at__isnull=False, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("kind", "size_bytes", "started_at", "finished_at")[:_SAMPLES]
    )
    samples = [
        (kind, size, (finished - started).total_seconds())
        for kind, size, started, finished in rows
        if started and finished and finished > started
    ]
    if not samples:
        return None
    overhead = min(_MAX_OVERHEAD, min(seconds for _, _, seconds in samples))
    rates: dict[str, float] = {}
    for kind in {"", *(kind for kind, _, _ in samples)}:
        mine = [(size, seconds) for k, size, seconds in samples if kind in ("", k)]
        spent = sum(max(seconds - overhead, 0.05) for _, seconds in mine)
        rates[kind] = max(sum(size for size, _ in mine), 1) / spent
    return _Throughput(overhead, rates)

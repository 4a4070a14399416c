"""The ingest queue: the background task `manage.py worker` runs, and putting documents on it.

The queue is django-tasks' database backend, in the same database as the documents, so
a document and its task are committed in one transaction.

Two lanes: a document under INGEST_SMALL_BYTES goes to the "small" queue with a higher
priority, others to "default". A worker serving both takes small ones first; `manage.py
serve` also runs a worker serving only "small", so a small file never waits behind a
long PDF.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from ingest.models import Document

from .lifecycle import worker_identity
from .processing import document_ingest
from .tools import ingest_tools

SMALL, LARGE = "small", "default"  # queue names
LANE_PRIORITY = {SMALL: 10, LARGE: 0}  # django-tasks runs higher priorities first


def document_lane(*, document: Document) -> str:
    """The queue a document's task goes to, by its size in bytes."""
    return lane_for_size(document.size_bytes)


def lane_for_size(size_bytes: int) -> str:
    return SMALL if size_bytes < settings.INGEST_SMALL_BYTES else LARGE


@task()
def ingest_document(document_id: int) -> str:
    document = document_ingest(
        document_id=document_id, owner=worker_identity(), tools=ingest_tools()
    )
    return document.status if document is not None else "skipped"


def document_enqueue(*, document: Document) -> None:
    """Queue a task for `document`; call it inside the transaction that changed the document,
    so that neither exists without the other."""
    with transaction.atomic():
        lane = document_lane(document=document)
        result = ingest_document.using(queue_name=lane, priority=LANE_PRIORITY[lane]).enqueue(
            document.pk
        )
        Document.objects.filter(pk=document.pk).update(
            task_id=str(result.id), updated_at=timezone.now()
        )

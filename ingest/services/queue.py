"""The ingest queue: the background task `manage.py worker` runs, and putting documents on it.

The queue is django-tasks' database backend, in the same database as the documents, so
a document and its task are committed in one transaction.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from ingest.models import Document

from .lifecycle import worker_identity
from .processing import document_ingest
from .tools import ingest_tools


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
        result = ingest_document.enqueue(document.pk)
        Document.objects.filter(pk=document.pk).update(
            task_id=str(result.id), updated_at=timezone.now()
        )

"""Background tasks, run by `manage.py worker` in its own process."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task


def ingest_tools():
    """The heavy objects ingestion needs, built once per process on first use."""
    from ingest.pipeline.embed import get_embedder
    from ingest.services.processing import IngestTools
    from ingest.store import get_store
    from ministral.tokens import get_counter

    return IngestTools(
        embedder=get_embedder(settings.EMBEDDING_MODEL_PATH),
        store=get_store(),
        count_llm_tokens=get_counter().text,
    )


@task()
def ingest_document(document_id: int) -> str:
    from ingest.services.processing import document_ingest, worker_identity

    document = document_ingest(
        document_id=document_id, owner=worker_identity(), tools=ingest_tools()
    )
    return document.status if document is not None else "skipped"

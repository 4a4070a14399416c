"""Business logic for documents: the only place views, commands, tasks and admin call."""

from __future__ import annotations

from .documents import (
    KnowledgeBaseExists,
    UploadResult,
    document_create,
    document_delete,
    document_reindex,
    kb_create,
    kb_delete,
    kb_get_or_create,
    kb_name_clean,
    kb_update,
)
from .processing import IngestTools, document_ingest, ingest_limits, worker_identity
from .recovery import ReconcileReport, documents_recover, kb_reconcile

__all__ = [
    "IngestTools",
    "KnowledgeBaseExists",
    "ReconcileReport",
    "UploadResult",
    "document_create",
    "document_delete",
    "document_ingest",
    "document_reindex",
    "documents_recover",
    "ingest_limits",
    "kb_create",
    "kb_delete",
    "kb_get_or_create",
    "kb_name_clean",
    "kb_reconcile",
    "kb_update",
    "worker_identity",
]

"""Business logic for documents: the only place views, commands, tasks and admin call."""

from __future__ import annotations

from .bulk import BulkResult, documents_bulk_delete, documents_bulk_reindex
from .documents import (
    KnowledgeBaseExists,
    UploadResult,
    document_create,
    document_delete,
    document_reindex,
    document_tag_set,
    kb_create,
    kb_delete,
    kb_get_or_create,
    kb_name_clean,
    kb_update,
)
from .lifecycle import worker_identity
from .processing import document_ingest, ingest_limits
from .queue import document_enqueue
from .recovery import ReconcileReport, documents_recover, kb_reconcile
from .tools import IngestTools, ingest_tools

__all__ = [
    "BulkResult",
    "IngestTools",
    "KnowledgeBaseExists",
    "ReconcileReport",
    "UploadResult",
    "document_create",
    "document_delete",
    "document_enqueue",
    "document_ingest",
    "document_reindex",
    "document_tag_set",
    "documents_bulk_delete",
    "documents_bulk_reindex",
    "documents_recover",
    "ingest_limits",
    "ingest_tools",
    "kb_create",
    "kb_delete",
    "kb_get_or_create",
    "kb_name_clean",
    "kb_reconcile",
    "kb_update",
    "worker_identity",
]

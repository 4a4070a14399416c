"""Index generations: a document's vectors and image files of one processing run.

A new run writes under generation N+1 while generation N stays searchable; the database
swap makes N+1 live, and only then are the others deleted.
"""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage

from ingest.models import Document
from ingest.store import StoreUnavailable, VectorStore

from .files import asset_prefix, storage_delete_tree

logger = logging.getLogger("docent.ingest")


def generations_keep_only(*, document: Document, live: int, store: VectorStore) -> None:
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


def generation_discard(*, document: Document, generation: int, store: VectorStore) -> None:
    """Drop what an unfinished run wrote (the live generation stays)."""
    try:
        store.delete_document(
            collection=document.kb.collection_name,
            document_id=document.pk,
            keep_generation=document.generation,
        )
    except StoreUnavailable:
        logger.warning("Partial vectors of document %s are left for reconcile", document.pk)
    storage_delete_tree(asset_prefix(document.kb_id, document.pk, generation))

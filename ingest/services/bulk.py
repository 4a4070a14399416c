"""Acting on many documents of one knowledge base at once (the documents page's selection)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.files.storage import default_storage
from django.db import transaction

from ingest.models import Document, DocumentStatus, KnowledgeBase
from ingest.store import StoreUnavailable, VectorStore

from .documents import document_reindex
from .files import asset_prefix, storage_delete_tree

logger = logging.getLogger("docent.ingest")
MAX_BULK_IDS = 1000  # documents per request: a page of the list is at most 200


@dataclass(frozen=True)
class Skipped:
    id: int
    reason: str


@dataclass(frozen=True)
class BulkResult:
    done: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _documents(kb: KnowledgeBase, ids: list[int]) -> tuple[list[Document], list[Skipped]]:
    """The documents of `kb` among `ids` (in the order given), and the ids that are not."""
    wanted = list(dict.fromkeys(ids))[:MAX_BULK_IDS]
    storable = [pk for pk in wanted if 0 < pk < 2**63]  # beyond 64 bits SQLite raises
    found = {d.pk: d for d in Document.objects.filter(kb=kb, pk__in=storable).select_related("kb")}
    missing = [Skipped(pk, "Not in this knowledge base (deleted already?).") for pk in wanted]
    return [found[pk] for pk in wanted if pk in found], [s for s in missing if s.id not in found]


def documents_bulk_delete(*, kb: KnowledgeBase, ids: list[int], store: VectorStore) -> BulkResult:
    """Delete these documents of `kb`: every row in one transaction, then vectors and files.

    As in `document_delete`, a vector left behind by a Chroma outage is invisible (it has
    no row) and `kb_reconcile` sweeps it later.
    """
    documents, skipped = _documents(kb, ids)
    files = {str(d.file.name) for d in documents if d.file}
    with transaction.atomic():
        Document.objects.filter(pk__in=[d.pk for d in documents]).delete()
    for document in documents:
        try:
            store.delete_document(collection=kb.collection_name, document_id=document.pk)
        except StoreUnavailable:
            logger.warning("Chroma unreachable; vectors of %s are left for reconcile", document.pk)
            break
    still_used = set(Document.objects.filter(file__in=files).values_list("file", flat=True))
    for name in files - still_used:
        default_storage.delete(name)
    for document in documents:
        storage_delete_tree(asset_prefix(kb.pk, document.pk))
    return BulkResult(done=[d.pk for d in documents], skipped=skipped)


def documents_bulk_reindex(*, kb: KnowledgeBase, ids: list[int]) -> BulkResult:
    """Queue these documents of `kb` again, in one transaction; skip those that can't be."""
    documents, skipped = _documents(kb, ids)
    done: list[int] = []
    with transaction.atomic():
        for document in documents:
            if document.status in {DocumentStatus.QUEUED, DocumentStatus.PROCESSING}:
                skipped.append(Skipped(document.pk, "Already queued or being processed."))
            elif not document.file:
                skipped.append(Skipped(document.pk, "Rejected on upload; upload it again."))
            else:
                document_reindex(document=document)
                done.append(document.pk)
    return BulkResult(done=done, skipped=skipped)

"""Which embedder indexed a knowledge base, and what to do when the server's differs.

Vectors from two embedders (another model, or the same model on another backend) live in
different spaces: a question embedded by one finds nonsense among the other's vectors.
So a knowledge base records the embedder of its first indexed document, later documents
must match it, retrieval ignores its vectors when the server's embedder differs (lexical
search still answers), and `kb_reindex_embedder` starts it afresh with the server's one.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from ingest.models import Chunk, Document, KnowledgeBase
from ingest.pipeline.types import IngestError
from ingest.store import VectorStore

logger = logging.getLogger("docent.ingest")


class EmbedderMismatch(IngestError):
    """The knowledge base was indexed by another embedder than this process's."""


def kb_embedder_problem(*, kb: KnowledgeBase, embedder_name: str) -> str:
    """Why `kb`'s vectors can't be searched with `embedder_name`; "" when they can."""
    if not kb.embedder or kb.embedder == embedder_name:
        return ""
    return (
        f"Knowledge base {kb.name!r} was indexed with {kb.embedder}, but this server embeds "
        f"with {embedder_name}. Re-index it (manage.py kb_reindex {kb.slug}), or switch "
        f"EMBEDDING_BACKEND back."
    )


def server_embedder_name() -> str:
    """The name of the embedder this server's settings choose, without loading it."""
    from pathlib import Path

    from django.conf import settings

    from ingest.pipeline.embed import default_model_path, embedder_name

    path = Path(settings.EMBEDDING_MODEL_PATH) if settings.EMBEDDING_MODEL_PATH else None
    return embedder_name(path or default_model_path(), settings.EMBEDDING_BACKEND)


def kb_embedder_claim(*, kb: KnowledgeBase, embedder_name: str) -> None:
    """Record `embedder_name` on a knowledge base not indexed yet; raise EmbedderMismatch
    if another embedder indexed it, so its collection never holds both."""
    unindexed = KnowledgeBase.objects.filter(pk=kb.pk).exclude(embedder=embedder_name)
    # Blank, or every chunk has gone (all its documents deleted): nothing left to mix with.
    unindexed.filter(Q(embedder="") | ~Exists(Chunk.objects.filter(kb=OuterRef("pk")))).update(
        embedder=embedder_name
    )
    kb.embedder = KnowledgeBase.objects.values_list("embedder", flat=True).get(pk=kb.pk)
    if kb.embedder != embedder_name:
        raise EmbedderMismatch(
            f"This knowledge base was indexed with {kb.embedder}, and the server now embeds "
            f"with {embedder_name}. An admin needs to re-index the knowledge base."
        )


def kbs_embedder_mismatched(*, embedder_name: str) -> list[KnowledgeBase]:
    """Knowledge bases whose vectors came from another embedder than `embedder_name`."""
    return list(KnowledgeBase.objects.exclude(embedder="").exclude(embedder=embedder_name))


def kb_reindex_embedder(*, kb: KnowledgeBase, store: VectorStore, embedder_name: str) -> int:
    """Drop `kb`'s vectors, record `embedder_name` and queue every document again.

    Until each document is done, its vectors are missing (lexical search still finds its
    chunks): mixing two embedders' vectors would rank worse than leaving them out.
    Returns the number of documents queued.
    """
    from .documents import document_reindex  # documents -> queue -> processing -> here

    with transaction.atomic():
        KnowledgeBase.objects.filter(pk=kb.pk).update(embedder=embedder_name)
        kb.embedder = embedder_name
        documents = list(Document.objects.filter(kb=kb).exclude(file=""))
    store.drop(collection=kb.collection_name)
    for document in documents:
        document_reindex(document=document)
    logger.info("Knowledge base %s: re-indexing %d documents", kb.slug, len(documents))
    return len(documents)

"""Which embedder indexed a knowledge base, and what to do when the server's differs.

Vectors from two embedders (another model, or the same model on another backend) live in
different spaces: a question embedded by one finds nonsense among the other's vectors.
So a knowledge base records the embedder of its first indexed document and is never
mixed. When the server's setting changes to another backend of the same model, the
knowledge base keeps its own (this server can run it) for questions and new documents,
until `kb_reindex_embedder` moves it. Only another model entirely can't be run: then new
documents are refused and questions search the words alone, until it is re-indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from ingest.models import Chunk, Document, KnowledgeBase
from ingest.pipeline.embed import Embedder
from ingest.pipeline.types import IngestError
from ingest.store import VectorStore

from .tools import IngestTools

logger = logging.getLogger("docent.ingest")


class EmbedderMismatch(IngestError):
    """The knowledge base was indexed by another embedder than this process's."""


def kb_embedder_problem(*, kb: KnowledgeBase, embedder_name: str) -> str:
    """Why `kb`'s vectors can't be searched with `embedder_name`; "" when they can."""
    if not kb.embedder or kb.embedder == embedder_name:
        return ""
    return (
        f"Knowledge base {kb.name!r} was indexed with {kb.embedder}, which this server can't "
        f"run (it embeds with {embedder_name}): questions search its words only. Re-index "
        f"it (manage.py kb_reindex {kb.slug}), or set EMBEDDING_MODEL_PATH back."
    )


def kb_embedder_note(*, kb: KnowledgeBase) -> str:
    """What an admin should know about `kb`'s vectors on this server; "" when it uses the
    server's own embedder (or has none yet). Loads no model."""
    from django.conf import settings

    names = server_embedder_names()
    server = names[settings.EMBEDDING_BACKEND]
    if not kb.embedder or kb.embedder == server:
        return ""
    if kb.embedder in names.values():
        return (
            f"Knowledge base {kb.name!r} was indexed with {kb.embedder}; its questions and "
            f"new documents keep using it. manage.py kb_reindex {kb.slug} moves it to "
            f"{server}, the server's embedder."
        )
    return kb_embedder_problem(kb=kb, embedder_name=server)


def server_embedder_names() -> dict[str, str]:
    """The names of the embedders this server can run (its model on each backend)."""
    from django.conf import settings

    from ingest.pipeline.embed import embedder_names

    return {str(k): v for k, v in embedder_names(settings.EMBEDDING_MODEL_PATH).items()}


def server_embedder_name() -> str:
    """The name of the embedder this server's settings choose, without loading it."""
    from django.conf import settings

    return server_embedder_names()[settings.EMBEDDING_BACKEND]


def kb_embedder_choose(
    *, kb: KnowledgeBase, default: Embedder, named: Callable[[str], Embedder | None]
) -> Embedder:
    """The embedder a question to `kb` is embedded with: the one that indexed it when this
    server can run it, else `default` (retrieval then leaves the vectors out)."""
    if kb.embedder and kb.embedder != default.name:
        return named(kb.embedder) or default
    return default


def kb_embedder_settle(*, kb: KnowledgeBase, tools: IngestTools) -> Embedder:
    """The embedder a new document of `kb` is indexed with, recorded on `kb` if it had none.

    A knowledge base with no vectors takes the server's embedder; one indexed with another
    backend of the same model keeps it. EmbedderMismatch if this server can't run `kb`'s.
    """
    try:
        kb_embedder_claim(kb=kb, embedder_name=tools.embedder.name)
        return tools.embedder
    except EmbedderMismatch:
        own = tools.embedder_named(kb.embedder)
        if own is None:
            raise
        return own


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


def kbs_embedders() -> list[Embedder]:
    """Loaded: the embedders other than the server's that knowledge bases were indexed with
    and this server can run (so their first question doesn't wait for a model to load)."""
    from django.conf import settings

    from ingest.pipeline.embed import embedder_named

    server = server_embedder_name()
    names = KnowledgeBase.objects.exclude(embedder__in=("", server)).values_list(
        "embedder", flat=True
    )
    found = (embedder_named(name, settings.EMBEDDING_MODEL_PATH) for name in set(names))
    return [embedder for embedder in found if embedder is not None]


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

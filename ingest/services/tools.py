"""The heavy objects ingestion needs (embedder, vector store, token counter), once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from ingest.pipeline.embed import Embedder
from ingest.store import VectorStore


def no_other_embedders(name: str) -> Embedder | None:
    return None


@dataclass(frozen=True)
class IngestTools:
    embedder: Embedder  # the server's: new knowledge bases are indexed with it
    store: VectorStore
    count_llm_tokens: Callable[[str], int]  # Ministral tokens of a chunk's text
    # The embedder whose vectors carry a name, when this server can run it (the same model
    # on another backend); a knowledge base keeps the one that indexed it.
    embedder_named: Callable[[str], Embedder | None] = no_other_embedders


def ingest_tools() -> IngestTools:
    """Built on first use and kept: loading the embedder takes seconds."""
    from functools import partial

    from ingest.pipeline.embed import embedder_named, get_embedder
    from ingest.store import get_store
    from ministral.tokens import get_counter

    return IngestTools(
        embedder=get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND),
        store=get_store(),
        count_llm_tokens=get_counter().text,
        embedder_named=partial(embedder_named, model_path=settings.EMBEDDING_MODEL_PATH),
    )

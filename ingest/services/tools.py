"""The heavy objects ingestion needs (embedder, vector store, token counter), once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from ingest.pipeline.embed import Embedder
from ingest.store import VectorStore


@dataclass(frozen=True)
class IngestTools:
    embedder: Embedder
    store: VectorStore
    count_llm_tokens: Callable[[str], int]  # Ministral tokens of a chunk's text


def ingest_tools() -> IngestTools:
    """Built on first use and kept: loading the embedder takes seconds."""
    from ingest.pipeline.embed import get_embedder
    from ingest.store import get_store
    from ministral.tokens import get_counter

    return IngestTools(
        embedder=get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND),
        store=get_store(),
        count_llm_tokens=get_counter().text,
    )

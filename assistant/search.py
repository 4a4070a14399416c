"""kb_search: one knowledge base searched for a query, judged for a match, as passages.

The chat's context (assistant.context) and the MCP `search` tool both search this way,
so a tool caller sees the passages an answer would have read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.conf import settings

from ingest.models import KnowledgeBase
from ingest.services.calibration import kb_match_threshold

from .relevance import Match, hits_match, passages_strong
from .retrieval import Hit, Mode, Passage, RetrievalConfig, passages_from_hits, retrieve
from .tools import ChatTools

CANDIDATES = 100  # chunks retrieved before they are merged into passages


@dataclass(frozen=True)
class Found:
    hits: list[Hit]  # best first
    match: Match
    passages: list[Passage]  # the strong ones, best first; none when nothing matches

    def nearest_documents(self, count: int = 3) -> tuple[str, ...]:
        """The names of the documents the best hits came from, for a "no match" answer."""
        return tuple(dict.fromkeys(h.chunk.document_name for h in self.hits))[:count]


def kb_search(
    *,
    kb: KnowledgeBase,
    query: str,
    tools: ChatTools,
    mode: str | None = None,
    with_screenshots: bool = False,
    documents: tuple[int, ...] | None = None,
) -> Found:
    """Search `kb` in `mode` (hybrid, dense or lexical; default RETRIEVAL_MODE), within
    `documents` (ids, from ingest.filters.documents_filtered) when given."""
    config = RetrievalConfig(
        mode=cast(Mode, mode or settings.RETRIEVAL_MODE),
        lexical_weight=settings.RETRIEVAL_LEXICAL_WEIGHT,
        max_postings=settings.RETRIEVAL_LEXICAL_MAX_POSTINGS,
        documents=documents,
    )
    hits = retrieve(
        kb=kb,
        query=query,
        embedder=tools.embedder,
        store=tools.store,
        limit=CANDIDATES,
        config=config,
    )
    match = hits_match(
        hits=hits,
        query=query,
        threshold=kb_match_threshold(kb=kb),
        with_screenshots=with_screenshots,
    )
    return Found(hits, match, passages_strong(passages_from_hits(hits), match=match, query=query))

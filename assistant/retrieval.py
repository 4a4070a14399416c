"""Hybrid retrieval: dense vectors from Chroma fused with BM25 from the database index.

Reciprocal-rank fusion throws the scores away and treats both lists as equals; on
paraphrased questions BM25's misses then push good dense hits down (python-faq: MRR
0.845 dense, 0.771 naive RRF). Here the fused score is the cosine similarity plus a
small bonus for lexical strength (BM25 divided by the best BM25 of the query), so an
exact word (an error code, a function name) lifts a passage without burying the
semantic match. `manage.py evaluate` reports each mode side by side.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Literal

from ingest.models import KnowledgeBase
from ingest.pipeline.chunk import merge_chunk_texts
from ingest.pipeline.embed import Embedder
from ingest.selectors import (
    ChunkRow,
    chunks_by_ids,
    chunks_by_vector_ids,
    chunks_search_lexical,
)
from ingest.services.embedders import kb_embedder_problem
from ingest.store import VectorStore

Mode = Literal["dense", "lexical", "hybrid"]
logger = logging.getLogger("docent.chat")


@dataclass(frozen=True)
class RetrievalConfig:
    mode: Mode = "hybrid"
    candidates: int = 100  # chunks taken from each of the dense and lexical lists
    # Bonus, in cosine-similarity units, for the query's best BM25 match. Flat between
    # 0.05 and 0.2 on python-faq (every value at or above dense-only), 0.15 in the middle.
    lexical_weight: float = 0.15
    # Index rows the lexical search may score per question; the rarest words are kept
    # within it (10k: about 10 ms at 100k chunks on 2 cores). 0: no limit.
    max_postings: int = 10_000
    documents: tuple[int, ...] | None = None  # only these documents' chunks (ids); None: all


@dataclass(frozen=True)
class Hit:
    chunk: ChunkRow
    score: float
    dense_rank: int | None = None  # 1-based
    lexical_rank: int | None = None
    similarity: float | None = None  # cosine to the question; None: only BM25 found it


@dataclass(frozen=True)
class Passage:
    """Neighbouring hit chunks of one document, merged: the unit that gets cited."""

    document_id: int
    document_name: str
    chunks: tuple[ChunkRow, ...]
    score: float
    pages: tuple[int, ...] = field(default_factory=tuple)
    similarity: float | None = None  # its closest chunk's cosine to the question

    @property
    def text(self) -> str:
        return merge_chunk_texts([c.text for c in self.chunks])

    @property
    def heading(self) -> str:
        return self.chunks[0].heading

    @property
    def token_count(self) -> int:
        """Ministral tokens of the chunks (an upper bound: overlaps are counted twice)."""
        return sum(c.token_count for c in self.chunks)


def retrieve(
    *,
    kb: KnowledgeBase,
    query: str,
    embedder: Embedder,
    store: VectorStore,
    limit: int,
    config: RetrievalConfig = RetrievalConfig(),
) -> list[Hit]:
    """The `limit` best chunks for a query, best first."""
    dense: list[tuple[ChunkRow, float]] = []
    lexical: list[tuple[ChunkRow, float]] = []
    loaded: dict[int, ChunkRow] = {}
    mode = config.mode
    if mode != "lexical" and kb.embedder and kb.embedder != embedder.name:
        # Its vectors came from another embedder: comparing them with this query's vector
        # would rank at random, so only the words are searched until it is re-indexed.
        _warn_once(kb_embedder_problem(kb=kb, embedder_name=embedder.name))
        mode = "lexical"
        config = replace(config, mode=mode)
    if mode in ("dense", "hybrid"):
        vector = embedder.encode([query])[0]
        hits = store.query(
            collection=kb.collection_name,
            vector=vector,
            limit=config.candidates,
            documents=config.documents,
        )
        rows = chunks_by_vector_ids(kb=kb, vector_ids=[h.vector_id for h in hits])
        dense = [(rows[h.vector_id], 1.0 - h.distance) for h in hits if h.vector_id in rows]
        loaded = {chunk.pk: chunk for chunk, _ in dense}
    if mode in ("lexical", "hybrid"):
        found = chunks_search_lexical(
            kb=kb,
            query=query,
            limit=config.candidates,
            max_postings=config.max_postings,
            documents=config.documents,
        )
        # Chunks both lists found are loaded once: building model rows is most of the cost.
        loaded |= chunks_by_ids(ids=[h.chunk_id for h in found if h.chunk_id not in loaded])
        lexical = [(loaded[h.chunk_id], h.score) for h in found if h.chunk_id in loaded]
    return fuse(dense, lexical, config=config)[:limit]


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning("%s", message)


def fuse(
    dense: list[tuple[ChunkRow, float]],
    lexical: list[tuple[ChunkRow, float]],
    *,
    config: RetrievalConfig,
) -> list[Hit]:
    """Cosine similarity plus lexical_weight x (BM25 / the query's best BM25).

    A chunk only BM25 found gets the weakest dense similarity seen as its base, so it
    ranks on its lexical strength among the dense tail rather than above everything.
    """
    chunks: dict[int, ChunkRow] = {}
    score: dict[int, float] = {}
    cosine: dict[int, float] = {}
    ranks: dict[int, list[int | None]] = defaultdict(lambda: [None, None])
    if config.mode != "lexical":
        for rank, (chunk, similarity) in enumerate(dense, start=1):
            chunks[chunk.pk], score[chunk.pk] = chunk, similarity
            cosine[chunk.pk] = similarity
            ranks[chunk.pk][0] = rank
    if config.mode != "dense" and lexical:
        floor = min((s for _, s in dense), default=0.0)
        best = max(s for _, s in lexical) or 1.0
        weight = 1.0 if config.mode == "lexical" else config.lexical_weight
        for rank, (chunk, bm25) in enumerate(lexical, start=1):
            chunks[chunk.pk] = chunk
            score[chunk.pk] = score.get(chunk.pk, floor) + weight * bm25 / best
            ranks[chunk.pk][1] = rank
    ordered = sorted(score, key=lambda pk: (-score[pk], ranks[pk][0] or 10**9))
    return [
        Hit(chunks[pk], score[pk], ranks[pk][0], ranks[pk][1], cosine.get(pk)) for pk in ordered
    ]


PASSAGE_MAX_TOKENS = 1024  # neighbours merge up to this size; a longer run is split


def passages_from_hits(hits: list[Hit]) -> list[Passage]:
    """Merge hits that are neighbours in one document; drop passages with duplicate text.

    A run of neighbouring hits is split into passages of at most PASSAGE_MAX_TOKENS
    (tokens), so that one long matching section never becomes a single passage too big
    for the retrieval budget.
    """
    by_doc: dict[int, list[Hit]] = defaultdict(list)
    for hit in hits:
        by_doc[hit.chunk.document_id].append(hit)
    passages: list[Passage] = []
    for doc_hits in by_doc.values():
        doc_hits.sort(key=lambda h: h.chunk.ordinal)
        group = [doc_hits[0]]
        size = group[0].chunk.token_count
        for hit in doc_hits[1:]:
            adjacent = hit.chunk.ordinal - group[-1].chunk.ordinal <= 1
            if adjacent and size + hit.chunk.token_count <= PASSAGE_MAX_TOKENS:
                group.append(hit)
                size += hit.chunk.token_count
            else:
                passages.append(_passage(group))
                group, size = [hit], hit.chunk.token_count
        passages.append(_passage(group))
    passages.sort(key=lambda p: -p.score)
    seen: set[str] = set()
    unique = []
    for passage in passages:
        key = " ".join(passage.text.split()).lower()
        if key not in seen:
            seen.add(key)
            unique.append(passage)
    return unique


def _passage(group: list[Hit]) -> Passage:
    chunks = tuple(h.chunk for h in group)
    pages = tuple(sorted({c.page for c in chunks if c.page}))
    first = chunks[0]
    similarities = [h.similarity for h in group if h.similarity is not None]
    return Passage(
        first.document_id,
        first.document_name,
        chunks,
        max(h.score for h in group),
        pages,
        max(similarities) if similarities else None,
    )

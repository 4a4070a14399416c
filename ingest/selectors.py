"""Read-side queries over documents and chunks, including the full-text (lexical) index."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from ingest.models import Chunk, Document, DocumentStatus, KnowledgeBase

_WORD = re.compile(r"[^\W_]+(?:[-.'][^\W_]+)*", re.UNICODE)
# Words so common they match nearly every chunk: they cost time and add no ranking signal.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: int
    score: float  # higher is better


def query_terms(text: str, *, limit: int = 32) -> list[str]:
    """Distinct search words of a question, minus stopwords, in order of appearance."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and len(word) <= 64:
            seen.setdefault(word, None)
    return list(seen)[:limit]


def chunks_search_lexical(*, kb: KnowledgeBase, query: str, limit: int) -> list[LexicalHit]:
    """BM25-ranked chunks of one knowledge base matching any query word.

    Uses the index the database keeps up to date on every write (SQLite FTS5 or a
    PostgreSQL GIN tsvector index), so nothing is rebuilt per query.
    """
    terms = query_terms(query)
    if not terms:
        return []
    if connection.vendor == "sqlite":
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = (
            "SELECT c.id, -bm25(ingest_chunk_fts, 0.5, 1.0) AS score "
            "FROM ingest_chunk_fts JOIN ingest_chunk c ON c.id = ingest_chunk_fts.rowid "
            "WHERE ingest_chunk_fts MATCH %s AND c.kb_id = %s ORDER BY bm25(ingest_chunk_fts, 0.5, 1.0) "
            "LIMIT %s"
        )
        params: list = [match, kb.pk, limit]
    elif connection.vendor == "postgresql":
        tsquery = " | ".join(re.sub(r"[^\w]", "", t) for t in terms if re.sub(r"[^\w]", "", t))
        if not tsquery:
            return []
        sql = (
            "SELECT id, ts_rank_cd(to_tsvector('english', heading || ' ' || text), q) AS score "
            "FROM ingest_chunk, to_tsquery('english', %s) q "
            "WHERE kb_id = %s AND to_tsvector('english', heading || ' ' || text) @@ q "
            "ORDER BY score DESC LIMIT %s"
        )
        params = [tsquery, kb.pk, limit]
    else:
        raise NotImplementedError(f"Lexical search has no index for {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [LexicalHit(int(row[0]), float(row[1])) for row in cursor.fetchall()]


# Retrieval candidates come a hundred or more per question; loading only what citing needs
# of their documents (not timestamps or JSON details) keeps building them cheap.
_CANDIDATE_FIELDS = (
    *(f.name for f in Chunk._meta.concrete_fields),
    "document__id",
    "document__kb_id",
    "document__filename",
)


def chunks_by_vector_ids(*, kb: KnowledgeBase, vector_ids: Iterable[str]) -> dict[str, Chunk]:
    """Live chunks for Chroma ids; ids without a row (stale or half-written) are left out."""
    ids = list(vector_ids)
    found: dict[str, Chunk] = {}
    for start in range(0, len(ids), 500):
        # Filtering on vector_id alone keeps the lookup on its unique index: with kb_id in
        # the WHERE clause SQLite scans the whole knowledge base through the kb_id index.
        batch = Chunk.objects.filter(vector_id__in=ids[start : start + 500]).order_by()
        for chunk in batch.select_related("document").only(*_CANDIDATE_FIELDS):
            if chunk.kb_id == kb.pk:
                found[chunk.vector_id] = chunk
    return found


def chunks_by_ids(*, ids: Iterable[int]) -> dict[int, Chunk]:
    chunks = Chunk.objects.filter(pk__in=list(ids)).order_by().select_related("document")
    chunks = chunks.only(*_CANDIDATE_FIELDS)
    return {c.pk: c for c in chunks}


def document_chunks(*, document_id: int) -> list[Chunk]:
    return list(Chunk.objects.filter(document_id=document_id).order_by("ordinal"))


def kb_documents_ready(*, kb: KnowledgeBase):
    return Document.objects.filter(kb=kb, status=DocumentStatus.READY)

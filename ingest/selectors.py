"""Read-side queries over documents and chunks, including the full-text (lexical) index."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Lower

from ingest.models import Asset, Chunk, Document, DocumentStatus, KnowledgeBase
from ingest.pipeline.chunk import merge_chunk_texts

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


def chunks_search_lexical(
    *,
    kb: KnowledgeBase,
    query: str,
    limit: int,
    max_postings: int = 0,
    documents: Sequence[int] | None = None,
) -> list[LexicalHit]:
    """BM25-ranked chunks of one knowledge base matching any query word.

    Uses the index the database keeps up to date on every write (SQLite FTS5 or a
    PostgreSQL GIN tsvector index), so nothing is rebuilt per query. `max_postings`
    (index rows, 0 for no limit) bounds the work on SQLite: the rarest words are kept
    while their postings fit, so a very common word cannot make a search slow. With
    `documents` (ids), only their chunks.
    """
    terms = query_terms(query)
    if not terms:
        return []
    if connection.vendor == "sqlite":
        return _search_sqlite(kb, terms, limit, max_postings, documents)
    # Settings accept only SQLite and PostgreSQL (ImproperlyConfigured otherwise).
    tsquery = " | ".join(re.sub(r"[^\w]", "", t) for t in terms if re.sub(r"[^\w]", "", t))
    if not tsquery:
        return []
    sql = (
        "SELECT id, ts_rank_cd(to_tsvector('english', heading || ' ' || text), q) AS score "
        "FROM ingest_chunk, to_tsquery('english', %s) q "
        "WHERE kb_id = %s AND to_tsvector('english', heading || ' ' || text) @@ q "
        "AND (%s::integer[] IS NULL OR document_id = ANY(%s::integer[])) "
        "ORDER BY score DESC LIMIT %s"
    )
    only = list(documents) if documents is not None else None
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, kb.pk, only, only, limit])
        return [LexicalHit(int(row[0]), float(row[1])) for row in cursor.fetchall()]


def _search_sqlite(
    kb: KnowledgeBase,
    terms: list[str],
    limit: int,
    max_postings: int,
    documents: Sequence[int] | None,
) -> list[LexicalHit]:
    if max_postings and len(terms) > 1:  # a lone word is always searched: skip the lookup
        terms = _within_postings(terms, max_postings)
        if not terms:
            return []
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    # bm25 weights: a heading counts half as much as body text. The whole index is ranked
    # first and only the best rows are joined: joining every match to test its knowledge
    # base cost more than ranking it. Exact whenever the best `wide` rows hold `limit` of
    # this knowledge base's (always, with one knowledge base); otherwise the filtered
    # query runs.
    wide = limit * 4
    fast = (
        "SELECT c.id, -t.rank, c.kb_id, c.document_id FROM (SELECT rowid AS id, "
        "bm25(ingest_chunk_fts, 0.5, 1.0) AS rank "
        "FROM ingest_chunk_fts WHERE ingest_chunk_fts MATCH %s ORDER BY rank LIMIT %s) t "
        "JOIN ingest_chunk c ON c.id = t.id ORDER BY t.rank"
    )
    filtered = (
        "SELECT c.id, -bm25(ingest_chunk_fts, 0.5, 1.0), c.kb_id, c.document_id "
        "FROM ingest_chunk_fts JOIN ingest_chunk c ON c.id = ingest_chunk_fts.rowid "
        "WHERE ingest_chunk_fts MATCH %s AND c.kb_id = %s AND (%s IS NULL OR c.document_id "
        "IN (SELECT value FROM json_each(%s))) ORDER BY bm25(ingest_chunk_fts, 0.5, 1.0) LIMIT %s"
    )
    only = json.dumps(list(documents)) if documents is not None else None
    allowed = set(documents) if documents is not None else None
    with connection.cursor() as cursor:
        cursor.execute(fast, [match, wide])
        rows = cursor.fetchall()
        mine = [r for r in rows if r[2] == kb.pk and (allowed is None or r[3] in allowed)]
        if len(mine) < limit and len(rows) == wide:
            cursor.execute(filtered, [match, kb.pk, only, only, limit])
            mine = cursor.fetchall()
    return [LexicalHit(int(row[0]), float(row[1])) for row in mine[:limit]]


def _within_postings(terms: list[str], budget: int) -> list[str]:
    """The rarest terms whose postings (index rows holding them) add up to at most `budget`.

    The rarest term is always kept. Terms absent from the index are dropped: they match
    nothing. Common terms carry little BM25 weight, so leaving them out barely changes
    the ranking of the chunks that hold the rare ones.
    """
    stems = _index_tokens(terms)
    wanted = sorted({token for tokens in stems for token in tokens})
    if not wanted:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT term, doc FROM ingest_chunk_fts_vocab "
            "WHERE term IN (SELECT value FROM json_each(%s))",
            [json.dumps(wanted)],
        )
        rows = dict(cursor.fetchall())
    costs = []
    for term, tokens in zip(terms, stems, strict=True):
        if tokens and all(rows.get(token) for token in tokens):
            costs.append((sum(rows[token] for token in tokens), term))
    costs.sort()
    kept: list[str] = []
    spent = 0
    for cost, term in costs:
        if kept and spent + cost > budget:
            break
        kept.append(term)
        spent += cost
    return kept


_tokenizers = threading.local()


def _index_tokens(terms: list[str]) -> list[list[str]]:
    """Each term as the full-text index stores it (Porter stems), via the same tokenizer."""
    db = getattr(_tokenizers, "db", None)
    if db is None:
        db = _tokenizers.db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')"
        )
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    with db:
        db.execute("DELETE FROM t")
        db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(terms, start=1))
        tokens: list[list[str]] = [[] for _ in terms]
        for term, row in db.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
            tokens[row - 1].append(term)
    return tokens


# Retrieval candidates come a hundred or more per question; loading only what citing needs
# of their documents (not timestamps or JSON details) keeps building them cheap.
@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk as retrieval reads it: plain column values, not a model instance.

    A question reads about 200 candidate chunks; building Django rows for them cost more
    than the two searches that found them.
    """

    pk: int
    document_id: int
    document_name: str  # the document's filename
    vector_id: str
    ordinal: int
    page: int | None  # 1-based, for paged documents
    heading: str
    text: str
    token_count: int  # Ministral tokens in `text`
    asset_id: int | None  # the figure or screenshot the chunk was read from


_ROW_COLUMNS = (
    "pk",
    "document_id",
    "document__filename",
    "vector_id",
    "ordinal",
    "page",
    "heading",
    "text",
    "token_count",
    "asset_id",
)


def chunks_by_vector_ids(*, kb: KnowledgeBase, vector_ids: Iterable[str]) -> dict[str, ChunkRow]:
    """Live chunks for Chroma ids; ids without a row (stale or half-written) are left out."""
    ids = list(vector_ids)
    found: dict[str, ChunkRow] = {}
    for start in range(0, len(ids), 500):
        # Filtering on vector_id alone keeps the lookup on its unique index: with kb_id in
        # the WHERE clause SQLite scans the whole knowledge base through the kb_id index.
        batch = Chunk.objects.filter(vector_id__in=ids[start : start + 500]).order_by()
        for *values, kb_id in batch.values_list(*_ROW_COLUMNS, "kb_id"):
            if kb_id == kb.pk:
                row = ChunkRow(*values)
                found[row.vector_id] = row
    return found


def chunks_by_ids(*, ids: Iterable[int]) -> dict[int, ChunkRow]:
    rows = Chunk.objects.filter(pk__in=list(ids)).order_by().values_list(*_ROW_COLUMNS)
    return {values[0]: ChunkRow(*values) for values in rows}


def asset_by_id(*, pk: int) -> Asset | None:
    """A figure or screenshot a chunk was read from, if it is still stored."""
    return Asset.objects.filter(pk=pk).first()


def document_pages(*, document: Document, cited: QuerySet[Chunk] | None = None) -> list[dict]:
    """A document's text by page: [{"number": page or None, "text": ...}], in order.

    With `cited`, only what those chunks cite: their whole pages in a paged document,
    the chunks themselves (merged where they overlap) in one without pages.
    """
    chunks = document.chunks.order_by("ordinal").only("page", "text")
    if cited is not None:
        pages = {page for page in cited.values_list("page", flat=True) if page is not None}
        chunks = chunks.filter(page__in=pages) if pages else chunks.filter(pk__in=cited)
    return [
        {"number": page, "text": merge_chunk_texts([c.text for c in group])}
        for page, group in groupby(chunks, key=lambda c: c.page)
    ]


# The documents list's sort keys (as the API and the page's URL name them) and their columns.
DOCUMENT_SORTS = {
    "name": "filename",
    "size": "size_bytes",
    "pages": "page_count",
    "chunks": "chunk_count",
    "uploaded": "created_at",
    "status": "status",
}
# Content search looks at this many of the best-matching chunks (their documents are added
# to the name and error matches): enough for a page of results, and always quick.
CONTENT_SEARCH_CHUNKS = 200


@dataclass(frozen=True)
class DocumentPage:
    items: list[Document]
    total: int  # documents matching the filters, on every page


def documents_page(
    *,
    kb: KnowledgeBase,
    q: str = "",
    status: str = "",
    kind: str = "",
    sort: str = "-uploaded",
    limit: int = 50,
    offset: int = 0,
) -> DocumentPage:
    """One page of a knowledge base's documents, filtered, searched and sorted.

    `q` matches a document's name or error (substring, any case) or its text (the
    full-text index: the documents of the best CONTENT_SEARCH_CHUNKS chunks). `sort` is a
    key of DOCUMENT_SORTS, "-" first for descending; ValueError for an unknown one. Three
    queries whatever the page size: the content search, the count and the page.
    """
    descending = sort.startswith("-")
    column = DOCUMENT_SORTS.get(sort.lstrip("-"))
    if column is None:
        raise ValueError(f"Sort by one of: {', '.join(DOCUMENT_SORTS)} (with - for descending).")
    documents = Document.objects.filter(kb=kb)
    if status:
        documents = documents.filter(status=status)
    if kind:
        documents = documents.filter(kind=kind)
    if q.strip():
        match = Q(filename__icontains=q.strip()) | Q(error__icontains=q.strip())
        hits = chunks_search_lexical(
            kb=kb,
            query=q,
            limit=CONTENT_SEARCH_CHUNKS,
            max_postings=settings.RETRIEVAL_LEXICAL_MAX_POSTINGS,
        )
        if hits:
            chunk_ids = [hit.chunk_id for hit in hits]
            match |= Q(pk__in=Chunk.objects.filter(pk__in=chunk_ids).values("document_id"))
        documents = documents.filter(match)
    key = Lower(column) if column == "filename" else F(column)  # names sort ignoring case
    # Only page_count is ever NULL; asking for NULLS LAST elsewhere would cost the index.
    nulls_last = True if column == "page_count" else None
    order = [key.desc(nulls_last=nulls_last) if descending else key.asc(nulls_last=nulls_last)]
    order.append(F("id").desc() if descending else F("id").asc())
    total = documents.count()
    page = documents.select_related("kb", "uploaded_by").order_by(*order)
    return DocumentPage(items=list(page[offset : offset + limit]), total=total)


PICKER_DOCUMENTS = 500  # the chat page's "ask only these documents" lists this many at most


def documents_pickable(*, kb: KnowledgeBase) -> dict:
    """The ready documents a question can be limited to, by name: {"items": [{"id",
    "name", "kind", "tag"}], "total": n}, the first PICKER_DOCUMENTS of them."""
    ready = kb.documents.filter(status=DocumentStatus.READY)
    rows = ready.order_by(Lower("filename"), "pk").values("pk", "filename", "kind", "tag")
    items = [
        {"id": r["pk"], "name": r["filename"], "kind": r["kind"], "tag": r["tag"]}
        for r in rows[:PICKER_DOCUMENTS]
    ]
    return {
        "items": items,
        "total": ready.count() if len(items) == PICKER_DOCUMENTS else len(items),
    }

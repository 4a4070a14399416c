"""Retrieval evaluation on BEIR-format data, through the real ingest, retrieval and packing.

Scores are at document level: a query's ranking is its retrieved chunks mapped to their
documents, first appearance first. Context recall asks whether the packed request, at a
given retrieval budget (tokens), contains a passage of a relevant document.
"""

from __future__ import annotations

import io
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from ingest.models import Document, KnowledgeBase
from ingest.services import (
    IngestTools,
    document_create,
    document_ingest,
    kb_delete,
    kb_get_or_create,
)
from ingest.services.calibration import kb_match_threshold

from .context import context_pack
from .tools import ChatTools

SUPPORTED_SUFFIXES = {
    ".pdf",
    ".docx",
    ".md",
    ".markdown",
    ".txt",
    ".html",
    ".htm",
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".gif",
}


@dataclass(frozen=True)
class CorpusEntry:
    id: str
    title: str
    text: str
    image: Path | None = None  # an image document: its text comes from OCR


@dataclass(frozen=True)
class BeirSet:
    corpus: dict[str, CorpusEntry]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: relevance > 0}


@dataclass
class EvalReport:
    mode: str
    queries: int
    documents: int
    distractors: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    ndcg_at_10: float
    context_recall: dict[str, float] = field(default_factory=dict)  # budget tokens -> share
    ingest_seconds: float = 0.0
    query_ms_p50: float = 0.0
    failed_documents: list[str] = field(default_factory=list)
    match_threshold: float = 0.0  # the knowledge base's calibrated bar (cosine)
    positives_refused: float = 0.0  # share of the set's questions answered "no match"
    negatives: int = 0  # off-topic questions asked (--negatives)
    negatives_refused: float | None = None  # share of them answered "no match"

    def as_dict(self) -> dict:
        return asdict(self)


class DatasetError(ValueError):
    pass


def beir_load(root: Path) -> BeirSet:
    """Read corpus.jsonl, queries.jsonl and qrels/test.tsv from a BEIR folder."""
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (root / name).is_file():
            raise DatasetError(f"{root / name} is missing (not a BEIR folder?)")
    corpus = {}
    for line_no, line in enumerate((root / "corpus.jsonl").read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image = (root / row["image"]).resolve() if row.get("image") else None
            if image is not None and root.resolve() not in image.parents:
                raise DatasetError(f"corpus line {line_no}: image path leaves the dataset folder")
            corpus[str(row["_id"])] = CorpusEntry(
                str(row["_id"]), row.get("title") or "", row.get("text") or "", image
            )
        except (json.JSONDecodeError, KeyError) as exc:
            raise DatasetError(f"corpus.jsonl line {line_no}: {exc}") from exc
    queries = {}
    for line in (root / "queries.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels/test.tsv").read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and int(parts[2]) > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    qrels = {q: rel for q, rel in qrels.items() if q in queries}
    if not qrels:
        raise DatasetError("no query in qrels/test.tsv has a relevant document")
    return BeirSet(corpus, queries, qrels)


def beir_queries(path: Path) -> dict[str, str]:
    """Questions alone, in BEIR's queries.jsonl format (used for off-topic negatives)."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    queries = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            queries[str(row["_id"])] = str(row["text"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path.name} line {line_no}: {exc}") from exc
    if not queries:
        raise DatasetError(f"{path} holds no questions")
    return queries


def evaluation_run(
    *,
    dataset: BeirSet,
    chat_tools: ChatTools,
    ingest_tools: IngestTools,
    mode: str = "hybrid",
    distractors: Path | None = None,
    budgets: Iterable[int] = (4_000, 16_000, 64_000),
    negatives: dict[str, str] | None = None,
    on_progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> EvalReport:
    """Ingest into a throwaway knowledge base, run every query, then delete the KB.

    `negatives` are off-topic questions: each should get "no match"."""
    kb = kb_get_or_create(name=f"eval-{uuid.uuid4().hex[:12]}")
    try:
        started = time.monotonic()
        doc_ids, failed = _ingest_corpus(kb, dataset, ingest_tools, on_progress)
        noise = (
            _ingest_distractors(kb, distractors, ingest_tools, on_progress) if distractors else 0
        )
        ingest_seconds = time.monotonic() - started
        kb.refresh_from_db()  # with the match threshold its ingest calibrated
        scores = _score(kb, dataset, doc_ids, chat_tools, mode, list(budgets), on_progress)
        refused = None
        if negatives:
            refused = _refused(kb, list(negatives.values()), chat_tools, mode, on_progress)
        return EvalReport(
            mode=mode,
            documents=len(doc_ids),
            distractors=noise,
            ingest_seconds=round(ingest_seconds, 1),
            failed_documents=failed,
            match_threshold=kb_match_threshold(kb=kb),
            negatives=len(negatives or {}),
            negatives_refused=refused,
            **scores,
        )
    finally:
        kb_delete(kb=kb, store=ingest_tools.store)


def _ingest_one(kb: KnowledgeBase, name: str, data: bytes, tools: IngestTools) -> Document:
    document = document_create(
        kb=kb, filename=name, content=io.BytesIO(data), enqueue=False
    ).document
    if document.status == "queued":
        document = (
            document_ingest(document_id=document.pk, owner="evaluate:0:0", tools=tools) or document
        )
    return document


def _ingest_corpus(
    kb, dataset: BeirSet, tools: IngestTools, on_progress
) -> tuple[dict[int, str], list[str]]:
    doc_ids: dict[int, str] = {}
    failed: list[str] = []
    total = len(dataset.corpus)
    for n, entry in enumerate(dataset.corpus.values()):
        on_progress("ingest", n, total)
        if entry.image is not None:
            name, data = f"{entry.id}{entry.image.suffix}", entry.image.read_bytes()
        else:
            body = (f"# {entry.title}\n\n" if entry.title else "") + entry.text
            # A corpus id doubles as the file name; identical texts must stay distinct docs.
            name, data = f"{entry.id}.md", (body + f"\n\n<!-- {entry.id} -->").encode()
        document = _ingest_one(kb, name, data, tools)
        if document.status == "ready":
            doc_ids[document.pk] = entry.id
        else:
            failed.append(f"{entry.id}: {document.error}")
    on_progress("ingest", total, total)
    return doc_ids, failed


def _ingest_distractors(kb, folder: Path, tools: IngestTools, on_progress) -> int:
    files = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    ]
    ready = 0
    for n, path in enumerate(files):
        on_progress("distractors", n, len(files))
        ready += (
            _ingest_one(kb, f"distractor-{n}-{path.name}", path.read_bytes(), tools).status
            == "ready"
        )
    return ready


def _score(
    kb,
    dataset: BeirSet,
    doc_ids: dict[int, str],
    tools: ChatTools,
    mode: str,
    budgets: list[int],
    on_progress,
) -> dict:
    """Rank metrics, context recall per budget and retrieval latency over every query."""
    hits_at = {1: 0, 5: 0, 10: 0}
    mrr = ndcg = 0.0
    refused = 0
    in_context = {b: 0 for b in budgets}
    latencies = []
    items = list(dataset.qrels.items())
    for n, (query_id, relevant) in enumerate(items):
        on_progress("queries", n, len(items))
        question = dataset.queries[query_id]
        documents, ms = documents_ranked(kb=kb, query=question, tools=tools, mode=mode)
        latencies.append(ms)
        ranking = [doc_ids[d] for d in documents if d in doc_ids]
        first = next((i for i, doc in enumerate(ranking) if doc in relevant), None)
        if first is not None:
            for k in hits_at:
                hits_at[k] += int(first < k)
            if first < 10:
                mrr += 1 / (first + 1)
        dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:10]))
        ideal = sum(
            g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10])
        )
        ndcg += dcg / ideal if ideal else 0
        packs = {budget: question_pack(kb, question, tools, mode, budget) for budget in budgets}
        matched = next(iter(packs.values())) if packs else question_pack(kb, question, tools, mode)
        refused += not matched.matched
        for budget, packed in packs.items():
            packed_docs = {doc_ids.get(s.passage.document_id) for s in packed.sources}
            in_context[budget] += bool(packed_docs & relevant.keys())
    count = len(items)
    latencies.sort()
    return {
        "queries": count,
        "recall_at_1": round(hits_at[1] / count, 3),
        "recall_at_5": round(hits_at[5] / count, 3),
        "recall_at_10": round(hits_at[10] / count, 3),
        "mrr_at_10": round(mrr / count, 3),
        "ndcg_at_10": round(ndcg / count, 3),
        "context_recall": {str(b): round(in_context[b] / count, 3) for b in budgets},
        "query_ms_p50": round(latencies[len(latencies) // 2], 1) if latencies else 0.0,
        "positives_refused": round(refused / count, 3),
    }


def documents_ranked(
    *, kb: KnowledgeBase, query: str, tools: ChatTools, mode: str
) -> tuple[list[int], float]:
    """The knowledge base's document ids in the order retrieval finds them (their best
    chunk's rank, of the best 100 chunks), and how long retrieval took (ms)."""
    from .retrieval import Mode, RetrievalConfig, retrieve

    started = time.perf_counter()
    hits = retrieve(
        kb=kb,
        query=query,
        embedder=tools.embedder,
        store=tools.store,
        limit=100,
        config=RetrievalConfig(mode=cast(Mode, mode)),
    )
    ms = (time.perf_counter() - started) * 1000
    return list(dict.fromkeys(h.chunk.document_id for h in hits)), ms


def question_pack(kb, question: str, tools: ChatTools, mode: str, budget: int | None = None):
    """What chat would pack for `question` (without a model), at `budget` tokens."""
    return context_pack(
        kb=kb,
        query=question,
        question=question,
        history=[],
        screenshots=[],
        info=None,
        tools=tools,
        max_output_tokens=0,
        retrieval_budget=budget,
        mode=mode,
    )


def _refused(kb, questions: list[str], tools: ChatTools, mode: str, on_progress) -> float:
    """The share of `questions` the knowledge base answers "no match", as chat would."""
    refused = 0
    for n, question in enumerate(questions):
        on_progress("negatives", n, len(questions))
        refused += not question_pack(kb, question, tools, mode).matched
    return round(refused / len(questions), 3)

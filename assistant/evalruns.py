"""Evaluation runs in the admin: a question set asked of its knowledge base, in the worker,
kept with the settings it ran with, and two runs compared question by question."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from ingest.models import Document, DocumentStatus
from ingest.services.calibration import kb_match_threshold

from .evaluation import documents_ranked, question_pack
from .models import EvaluationRun, QuestionSet

if TYPE_CHECKING:
    from ingest.models import KnowledgeBase

    from .tools import ChatTools

logger = logging.getLogger("docent.evaluation")

RANKED_KEPT = 10  # document names kept per question, for the comparison
PROGRESS_SECONDS = 1.0  # how often a run's progress is saved
# (label, key, higher is better): the figures a run reports, in the order shown.
METRICS = (
    ("Recall@1", "recall_at_1", True),
    ("Recall@5", "recall_at_5", True),
    ("Recall@10", "recall_at_10", True),
    ("MRR@10", "mrr_at_10", True),
    ("No-match accuracy", "no_match_accuracy", True),
    ("Real questions refused", "positives_refused", False),
    ("Off-topic refused", "negatives_refused", True),
    ("Retrieval p50, ms", "query_ms_p50", False),
)


def evaluation_run_queue(
    *, question_set: QuestionSet, mode: str = "hybrid", note: str = "", user=None
) -> EvaluationRun:
    """A run of `question_set`, queued for the worker with the settings it will use."""
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            question_set=question_set,
            mode=mode,
            note=note[:200],
            total=len(question_set.questions),
            snapshot=kb_settings_snapshot(kb=question_set.kb, mode=mode),
            created_by=user,
        )
        evaluation_run_task.using(queue_name="default", priority=5).enqueue(run.pk)
    return run


def kb_settings_snapshot(*, kb: KnowledgeBase, mode: str) -> dict:
    """What decides how `kb` finds answers, as of now (JSON)."""
    from .retrieval import RetrievalConfig

    config = RetrievalConfig()
    ready = Document.objects.filter(kb=kb, status=DocumentStatus.READY)
    return {
        "mode": mode,
        "embedder": kb.embedder or "(none yet)",
        "no_match_threshold": round(kb_match_threshold(kb=kb), 3),
        "no_match_threshold_from": "staff" if kb.no_match_threshold is not None else "calibrated",
        "lexical_weight": config.lexical_weight,
        "candidates": config.candidates,
        "retrieval_budget": kb.retrieval_budget,
        "documents_ready": ready.count(),
        "chunk_max_tokens": settings.CHUNK_MAX_TOKENS,
        "chunk_overlap_tokens": settings.CHUNK_OVERLAP_TOKENS,
    }


@task()
def evaluation_run_task(run_id: int) -> str:
    from .tools import chat_tools

    run = EvaluationRun.objects.select_related("question_set__kb").get(pk=run_id)
    return evaluation_run_execute(run=run, tools=chat_tools(run.question_set.kb)).status


def evaluation_run_execute(*, run: EvaluationRun, tools: ChatTools) -> EvaluationRun:
    """Ask every question of the run's set; save progress about every second, then the
    metrics and one result per question. A failure is kept on the run, not raised."""
    kb = run.question_set.kb
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=EvaluationRun.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    try:
        documents = dict(Document.objects.filter(kb=kb).values_list("filename", "pk"))
        names = {pk: name for name, pk in documents.items()}
        results = []
        saved = time.monotonic()
        for n, question in enumerate(run.question_set.questions, start=1):
            results.append(_ask(kb, question, documents, names, tools, run.mode))
            if time.monotonic() - saved >= PROGRESS_SECONDS:
                saved = time.monotonic()
                EvaluationRun.objects.filter(pk=run.pk).update(done=n, heartbeat_at=timezone.now())
        run.results, run.metrics = results, run_metrics(results=results)
        run.done, run.status = len(results), EvaluationRun.Status.DONE
    except Exception as exc:
        logger.exception("Evaluation run %s failed", run.pk)
        run.status, run.error = EvaluationRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
    run.finished_at = run.heartbeat_at = timezone.now()
    run.save()
    return run


def _ask(kb, question: dict, documents: dict[str, int], names: dict[int, str], tools, mode) -> dict:
    ranked, ms = documents_ranked(kb=kb, query=question["text"], tools=tools, mode=mode)
    matched = question_pack(kb, question["text"], tools, mode).matched
    expected = [documents[name] for name in question["expected"] if name in documents]
    first = next((i for i, pk in enumerate(ranked) if pk in expected), None)
    return {
        "id": question["id"],
        "text": question["text"],
        "expected": question["expected"],
        "missing": [name for name in question["expected"] if name not in documents],
        "rank": None if first is None else first + 1,  # of the first expected document
        "matched": matched,
        "ranked": [names.get(pk, "?") for pk in ranked[:RANKED_KEPT]],
        "ms": round(ms, 1),
    }


def run_metrics(*, results: list[dict]) -> dict:
    """Recall@k and MRR@10 over the answerable questions; no-match accuracy over all (an
    answerable question should match, an off-topic one should not)."""
    answerable = [r for r in results if r["expected"]]
    off_topic = [r for r in results if not r["expected"]]
    metrics: dict = {"questions": len(results), "off_topic": len(off_topic)}
    if answerable:
        count = len(answerable)
        for k in (1, 5, 10):
            metrics[f"recall_at_{k}"] = round(
                sum(r["rank"] is not None and r["rank"] <= k for r in answerable) / count, 3
            )
        mrr = sum(1 / r["rank"] for r in answerable if r["rank"] and r["rank"] <= 10)
        metrics["mrr_at_10"] = round(mrr / count, 3)
        metrics["positives_refused"] = round(sum(not r["matched"] for r in answerable) / count, 3)
    if off_topic:
        refused = sum(not r["matched"] for r in off_topic)
        metrics["negatives_refused"] = round(refused / len(off_topic), 3)
    if results:
        right = sum(r["matched"] == bool(r["expected"]) for r in results)
        metrics["no_match_accuracy"] = round(right / len(results), 3)
        latencies = sorted(r["ms"] for r in results)
        metrics["query_ms_p50"] = latencies[len(latencies) // 2]
    return metrics


def run_misses(*, results: list[dict], k: int = 5) -> list[dict]:
    """The answerable questions whose expected document is not in the first `k` ranked."""
    return [r for r in results if r["expected"] and (r["rank"] is None or r["rank"] > k)]


def run_wrong_matches(*, results: list[dict]) -> list[dict]:
    """The questions judged the wrong way: real ones refused, off-topic ones answered."""
    return [r for r in results if r["matched"] != bool(r["expected"])]


def evaluation_run_stalled(*, run: EvaluationRun) -> bool:
    """A run whose worker stopped: no progress saved for two worker leases."""
    if run.status not in (EvaluationRun.Status.RUNNING,) or run.heartbeat_at is None:
        return False
    return timezone.now() - run.heartbeat_at > timedelta(seconds=2 * settings.WORKER_LEASE_SECONDS)


@dataclass(frozen=True)
class MetricRow:
    label: str
    a: float | None
    b: float | None
    better: bool | None  # whether b improves on a; None when equal or not comparable


@dataclass(frozen=True)
class QuestionDiff:
    text: str
    expected: list[str]
    a: dict
    b: dict
    change: str  # "better" or "worse"


@dataclass(frozen=True)
class Comparison:
    metrics: list[MetricRow]
    settings: list[tuple[str, object, object]]  # only those that differ
    questions: list[QuestionDiff]  # only those whose outcome changed, worst first
    same: int  # questions with the same outcome in both


def runs_compare(*, a: EvaluationRun, b: EvaluationRun) -> Comparison:
    """Run `b` against run `a`: each metric, the settings that differ, and every question
    whose rank of its expected document, or whose match, changed."""
    rows = []
    for label, key, higher in METRICS:
        x, y = a.metrics.get(key), b.metrics.get(key)
        better = None if x is None or y is None or x == y else (y > x) == higher
        rows.append(MetricRow(label, x, y, better))
    keys = list(dict.fromkeys([*a.snapshot, *b.snapshot]))
    changed = [(k, a.snapshot.get(k), b.snapshot.get(k)) for k in keys]
    by_id = {r["id"]: r for r in a.results}
    diffs, same = [], 0
    for r in b.results:
        before = by_id.get(r["id"])
        if before is None:
            continue
        score = _score(r) - _score(before)
        if score == 0:
            same += 1
            continue
        change = "better" if score > 0 else "worse"
        diffs.append(QuestionDiff(r["text"], r["expected"], before, r, change))
    diffs.sort(key=lambda d: (d.change == "better", _score(d.b) - _score(d.a)))
    return Comparison(rows, [c for c in changed if c[1] != c[2]], diffs, same)


def _score(result: dict) -> float:
    """One question's outcome as a number: reciprocal rank (answerable) plus one for the
    right match decision."""
    right = result["matched"] == bool(result["expected"])
    rank = result["rank"]
    return (1 / rank if rank else 0.0) + (1.0 if right else 0.0)

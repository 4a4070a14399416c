"""What staff see of how a knowledge base answers: outcomes per day, feedback, cost, and the
questions it could not answer, grouped by meaning."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
from django.core.cache import cache
from django.db.models import Case, CharField, Count, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Feedback, Message

if TYPE_CHECKING:
    from ingest.models import KnowledgeBase
    from ingest.pipeline.embed import Embedder

# How an answer went, in the order the page stacks them.
OUTCOMES = {
    "sources": "Answered from sources",
    "retrieval_only": "Passages only (no model)",
    "no_sources": "Answered without sources",
    "no_match": "No match",
    "error": "Failed",
}
PERIODS = (7, 30, 90)  # days the page offers
SAME_QUESTION = 0.72  # cosine at which two questions count as one (MiniLM paraphrases)
CLUSTERED_AT_MOST = 500  # most recent unanswered questions grouped (embedding ~2 ms each)


def _outcome() -> Case:
    return Case(
        When(status=Message.Status.ERROR, then=Value("error")),
        When(matched=False, then=Value("no_match")),
        When(retrieval_only=True, then=Value("retrieval_only")),
        When(sources=[], then=Value("no_sources")),
        default=Value("sources"),
        output_field=CharField(),
    )


def _question() -> Subquery:
    """The question an answer replies to: its conversation's last user message before it."""
    asked = Message.objects.filter(
        conversation=OuterRef("conversation"), role=Message.Role.USER, pk__lt=OuterRef("pk")
    ).order_by("-pk")
    return Subquery(asked.values("content")[:1])


@dataclass
class Day:
    day: date
    questions: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    helpful: int = 0
    unhelpful: int = 0
    cost: Decimal = Decimal(0)
    cost_reported: int = 0  # answers whose API reported a cost

    @property
    def counts(self) -> list[tuple[str, int]]:
        return [(OUTCOMES[key], n) for key, n in self.outcomes.items()]


@dataclass(frozen=True)
class Unanswered:
    """Questions that got no match or a thumbs down, grouped by meaning."""

    question: str  # the group's most typical wording
    count: int
    examples: tuple[str, ...]  # other wordings, up to three
    last_asked: datetime
    conversation_uid: str  # the latest one, for staff to read
    reasons: tuple[str, ...]  # "No match", "Not helpful"


@dataclass(frozen=True)
class Comment:
    rating: int
    comment: str
    question: str
    created_at: datetime
    conversation_uid: str


@dataclass
class Analytics:
    kb_slug: str
    days: list[Day]
    unanswered: list[Unanswered]
    comments: list[Comment]

    @property
    def questions(self) -> int:
        return sum(d.questions for d in self.days)

    def total(self, outcome: str) -> int:
        return sum(d.outcomes[outcome] for d in self.days)

    @property
    def percent(self) -> dict[str, int]:
        """Each outcome's share of all questions, whole percent (0 with none asked)."""
        asked = self.questions
        return {key: round(100 * self.total(key) / asked) if asked else 0 for key in OUTCOMES}

    @property
    def outcome_labels(self) -> list[str]:
        return list(OUTCOMES.values())

    @property
    def helpful(self) -> int:
        return sum(d.helpful for d in self.days)

    @property
    def unhelpful(self) -> int:
        return sum(d.unhelpful for d in self.days)

    @property
    def cost(self) -> Decimal:
        return sum((d.cost for d in self.days), Decimal(0))

    @property
    def cost_reported(self) -> int:
        return sum(d.cost_reported for d in self.days)

    def chart(self) -> dict:
        """The per-day series the page draws (JSON)."""
        return {
            "labels": [d.day.isoformat() for d in self.days],
            "outcomes": [
                {"key": key, "label": label, "data": [d.outcomes[key] for d in self.days]}
                for key, label in OUTCOMES.items()
            ],
            "helpful": [d.helpful for d in self.days],
            "unhelpful": [d.unhelpful for d in self.days],
        }


def kb_analytics(
    *, kb: KnowledgeBase, days: int, embedder: Embedder, today: date | None = None
) -> Analytics:
    """The last `days` days (today included, in the server's time zone) of `kb`'s answers."""
    first, answers = _answers_since(kb, days, today)
    table = {first + timedelta(days=n): Day(first + timedelta(days=n)) for n in range(days)}
    rows = (
        answers.annotate(day=TruncDate("created_at"), outcome=_outcome())
        .values("day", "outcome")
        .annotate(n=Count("pk"), costed=Count("cost"), spent=Sum("cost"))
    )
    for row in rows:
        if (day := table.get(row["day"])) is not None:
            day.outcomes[row["outcome"]] += row["n"]
            day.questions += row["n"]
            day.cost += row["spent"] or Decimal(0)
            day.cost_reported += row["costed"]
    ratings = (
        Feedback.objects.filter(message__in=answers)
        .annotate(day=TruncDate("message__created_at"))
        .values("day")
        .annotate(up=Count("pk", filter=Q(rating=1)), down=Count("pk", filter=Q(rating=-1)))
    )
    for rated in ratings:
        if (day := table.get(rated["day"])) is not None:
            day.helpful, day.unhelpful = rated["up"], rated["down"]
    return Analytics(
        kb_slug=kb.slug,
        days=list(table.values()),
        unanswered=_unanswered(answers, embedder),
        comments=_comments(answers),
    )


def _answers_since(kb: KnowledgeBase, days: int, today: date | None):
    """The first day of the period, and the answers given since it began."""
    first = (today or timezone.localdate()) - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    answers = Message.objects.filter(
        conversation__kb=kb, role=Message.Role.ASSISTANT, created_at__gte=start
    )
    return first, answers


def _comments(answers) -> list[Comment]:
    found = (
        Feedback.objects.filter(message__in=answers)
        .exclude(comment="")
        .annotate(question=_question_of_rated())
        .select_related("message__conversation")
        .order_by("-created_at")[:50]
    )
    return [
        Comment(
            rating=f.rating,
            comment=f.comment,
            question=f.question or "",
            created_at=f.created_at,
            conversation_uid=str(f.message.conversation.uid),
        )
        for f in found
    ]


def _question_of_rated() -> Subquery:
    asked = Message.objects.filter(
        conversation=OuterRef("message__conversation"),
        role=Message.Role.USER,
        pk__lt=OuterRef("message"),
    ).order_by("-pk")
    return Subquery(asked.values("content")[:1])


def _unanswered(answers, embedder: Embedder) -> list[Unanswered]:
    missed = (
        answers.filter(Q(matched=False) | Q(feedback__rating=-1))
        .annotate(question=_question(), down=Count("feedback", filter=Q(feedback__rating=-1)))
        .values("pk", "question", "matched", "down", "created_at", "conversation__uid")
        .order_by("-created_at", "-pk")[:CLUSTERED_AT_MOST]
    )
    rows = [r for r in missed if (r["question"] or "").strip()]
    if not rows:
        return []
    texts = [" ".join(r["question"].split()) for r in rows]
    key = "analytics:vectors:" + hashlib.sha256("\n".join(texts).encode()).hexdigest()
    vectors = cache.get(key)
    if vectors is None:
        vectors = embedder.encode(texts)
        cache.set(key, vectors, 600)
    groups = questions_group(vectors=np.asarray(vectors), threshold=SAME_QUESTION)
    found = []
    for members in groups[:10]:
        wordings = list(dict.fromkeys(texts[i] for i in members))
        latest = rows[members[0]]  # rows come newest first, and so do members
        reasons = []
        if any(rows[i]["matched"] is False for i in members):
            reasons.append("No match")
        if any(rows[i]["down"] for i in members):
            reasons.append("Not helpful")
        typical = texts[_typical(vectors, members)]
        found.append(
            Unanswered(
                question=typical,
                count=len(members),
                examples=tuple(w for w in wordings if w != typical)[:3],
                last_asked=latest["created_at"],
                conversation_uid=str(latest["conversation__uid"]),
                reasons=tuple(reasons),
            )
        )
    return found


def questions_group(*, vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Indices grouped by meaning, largest group first (ties: the one holding the earliest
    index). Each vector joins the first group whose mean is within `threshold` cosine, in
    order, so the result does not depend on anything but the input's order."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for i, vector in enumerate(unit):
        if sums:
            means = np.stack(sums)
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
            scores = means @ vector
            best = int(np.argmax(scores))
            if scores[best] >= threshold:
                groups[best].append(i)
                sums[best] = sums[best] + vector
                continue
        groups.append([i])
        sums.append(vector.copy())
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _typical(vectors: np.ndarray, members: Sequence[int]) -> int:
    """The member closest to the group's mean."""
    chosen = np.asarray(vectors)[list(members)]
    mean = chosen.mean(axis=0)
    return members[int(np.argmax(chosen @ mean))]


def answers_csv(*, kb: KnowledgeBase, days: int, today: date | None = None) -> str:
    """One row per answer of the last `days` days: when, question, outcome, rating, comment,
    tokens, cost. Cells a spreadsheet would run as a formula are quoted with a leading '."""
    answers = (
        _answers_since(kb, days, today)[1]
        .annotate(question=_question(), outcome=_outcome())
        .select_related("conversation")
        .prefetch_related("feedback")
        .order_by("created_at", "pk")
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "answered_at",
            "conversation",
            "question",
            "outcome",
            "model",
            "helpful",
            "not_helpful",
            "comments",
            "prompt_tokens",
            "completion_tokens",
            "cost",
        ]
    )
    for answer in answers.iterator(chunk_size=500):
        ratings = list(answer.feedback.all())
        writer.writerow(
            _cells(
                [
                    answer.created_at.isoformat(),
                    str(answer.conversation.uid),
                    answer.question or "",
                    OUTCOMES[answer.outcome],
                    answer.model,
                    sum(f.rating == 1 for f in ratings),
                    sum(f.rating == -1 for f in ratings),
                    " | ".join(f.comment for f in ratings if f.comment),
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    answer.cost,
                ]
            )
        )
    return out.getvalue()


def _cells(values: Iterable[object]) -> list[object]:
    # A question typed as "=HYPERLINK(...)" must stay text when staff open the file.
    return [
        "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
        for v in values
    ]

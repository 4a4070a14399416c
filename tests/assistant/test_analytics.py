"""The staff analytics page's numbers: outcomes per day, feedback, cost, the unanswered
questions grouped by meaning, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from assistant.analytics import answers_csv, kb_analytics, questions_group
from assistant.models import Conversation, Feedback, Message
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 30)


def _at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()) + timedelta(hours=hour))


def answered(kb, question: str, *, day: date = TODAY, **reply) -> Message:
    """One question and its answer, as chat saves them, dated `day`."""
    conversation = Conversation.objects.create(kb=kb, owner_key="visitor:1", title=question)
    Message.objects.create(conversation=conversation, role="user", content=question)
    fields = {"sources": [{"document": "guide.md"}], "matched": True, "model": "ministral"}
    answer = Message.objects.create(
        conversation=conversation, role="assistant", content="…", **(fields | reply)
    )
    Message.objects.filter(conversation=conversation).update(created_at=_at(day))
    return Message.objects.get(pk=answer.pk)


def rate(answer: Message, rating: int, comment: str = "", who: str = "visitor:1") -> None:
    Feedback.objects.create(message=answer, rating=rating, comment=comment, owner_key=who)


def test_each_answer_counts_once_under_how_it_went(kb):
    answered(kb, "How do I reset it?", cost=Decimal("0.0012"))
    answered(kb, "Where is the manual?", day=TODAY - timedelta(days=1), cost=Decimal("0.0008"))
    answered(kb, "What is E-42?", retrieval_only=True, model="")
    answered(kb, "Anything?", sources=[])
    answered(kb, "Who won in 1954?", matched=False, sources=[])
    answered(kb, "Is it broken?", status="error")
    answered(kb, "Too old to count", day=TODAY - timedelta(days=7))

    report = kb_analytics(kb=kb, days=7, embedder=HashEmbedder(), today=TODAY)

    assert report.questions == 6
    assert [d.questions for d in report.days] == [0, 0, 0, 0, 0, 1, 5]
    assert report.days[-1].outcomes == {
        "sources": 1,
        "retrieval_only": 1,
        "no_sources": 1,
        "no_match": 1,
        "error": 1,
    }
    assert report.percent["sources"] == 33 and report.percent["no_match"] == 17
    assert report.cost == Decimal("0.0020")
    chart = report.chart()
    assert chart["labels"][-1] == "2026-11-30" and len(chart["labels"]) == 7
    assert chart["outcomes"][0]["data"][-2:] == [1, 1]


def test_feedback_counts_on_the_day_of_the_answer_and_comments_show_their_question(kb):
    answer = answered(kb, "How do I reset it?", day=TODAY - timedelta(days=2))
    rate(answer, 1, "Clear, thanks", who="visitor:1")
    rate(answer, -1, "", who="visitor:2")
    report = kb_analytics(kb=kb, days=7, embedder=HashEmbedder(), today=TODAY)
    assert (report.days[-3].helpful, report.days[-3].unhelpful) == (1, 1)
    assert (report.helpful, report.unhelpful) == (1, 1)
    [comment] = report.comments
    assert (comment.comment, comment.question, comment.rating) == (
        "Clear, thanks",
        "How do I reset it?",
        1,
    )


def test_unanswered_questions_are_grouped_by_meaning_most_asked_first(kb, embedder):
    for question in (
        "How do I reset my router to factory settings?",
        "how can I factory reset the router",
        "Resetting the router to its factory defaults?",
    ):
        answered(kb, question, matched=False, sources=[])
    answered(kb, "What is the warranty period?", matched=False, sources=[])
    rate(answered(kb, "Why is the amber light blinking?"), -1, "Didn't say")
    answered(kb, "Where is the manual?")  # answered, and not rated down: not listed

    report = kb_analytics(kb=kb, days=7, embedder=embedder, today=TODAY)

    assert [g.count for g in report.unanswered] == [3, 1, 1]
    reset = report.unanswered[0]
    assert "reset" in reset.question.lower() and len(reset.examples) == 2
    assert reset.reasons == ("No match",)
    reasons = {g.question: g.reasons for g in report.unanswered[1:]}
    assert reasons == {
        "Why is the amber light blinking?": ("Not helpful",),
        "What is the warranty period?": ("No match",),
    }


def test_grouping_follows_cosine_and_is_stable():
    x, y = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_x = np.array([0.95, 0.31])
    vectors = np.stack([y, x, near_x, x * 3])
    assert questions_group(vectors=vectors, threshold=0.9) == [[1, 2, 3], [0]]
    assert questions_group(vectors=vectors, threshold=0.999) == [[1, 3], [0], [2]]


def test_the_csv_has_one_row_per_answer_and_keeps_formulas_as_text(kb):
    answer = answered(kb, '=HYPERLINK("http://evil.example","click")', cost=Decimal("0.5"))
    rate(answer, -1, "+1 wrong")
    answered(kb, "Who won in 1954?", matched=False, sources=[])
    rows = list(csv.DictReader(io.StringIO(answers_csv(kb=kb, days=30, today=TODAY))))
    assert [r["outcome"] for r in rows] == ["Answered from sources", "No match"]
    first = rows[0]
    assert first["question"].startswith("'=HYPERLINK(")
    assert first["comments"] == "'+1 wrong"
    assert (first["helpful"], first["not_helpful"], first["cost"]) == ("0", "1", "0.500000")


def test_staff_download_the_csv_and_others_are_sent_to_sign_in(kb):
    answered(kb, "How do I reset it?", day=timezone.localdate())
    staff = get_user_model().objects.create_user("boss", password="pw-123456789", is_staff=True)
    client = Client()
    assert client.get(f"/kb/{kb.slug}/analytics.csv").status_code == 302
    client.force_login(staff)
    response = client.get(f"/kb/{kb.slug}/analytics.csv?days=7")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{kb.slug}-answers-' in response["Content-Disposition"]
    assert "How do I reset it?" in response.content.decode()

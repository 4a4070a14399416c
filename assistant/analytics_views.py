"""Staff pages: a knowledge base's answers over time, and the same as CSV."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from ingest.models import KnowledgeBase

from .analytics import PERIODS, answers_csv, kb_analytics
from .tools import chat_tools


def _days(request: HttpRequest) -> int:
    asked = request.GET.get("days", "")
    return int(asked) if asked in {str(p) for p in PERIODS} else 30


@staff_member_required
@require_GET
def analytics_page(request: HttpRequest, slug: str) -> HttpResponse:
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    days = _days(request)
    report = kb_analytics(kb=kb, days=days, embedder=chat_tools(kb).embedder)
    context = {"kb": kb, "report": report, "days": days, "periods": PERIODS}
    return render(request, "assistant/analytics.html", context)


@staff_member_required
@require_GET
def analytics_csv(request: HttpRequest, slug: str) -> HttpResponse:
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    days = _days(request)
    response = HttpResponse(answers_csv(kb=kb, days=days), content_type="text/csv; charset=utf-8")
    name = f"{kb.slug}-answers-{timezone.localdate():%Y-%m-%d}-{days}d.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response

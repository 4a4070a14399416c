"""Read-side queries for conversations: what staff may review."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from ingest.models import KnowledgeBase

from .models import Conversation, Message


def conversations_with_feedback(*, kb: KnowledgeBase, only: str = "") -> QuerySet[Conversation]:
    """Every conversation of a knowledge base with its answer and feedback counts (staff).

    only: "negative" (some answer rated unhelpful), "any" (some rating), or "" (all).
    """
    conversations = (
        Conversation.objects.filter(kb=kb)
        .select_related("user")
        .annotate(
            answers=Count(
                "messages", filter=Q(messages__role=Message.Role.ASSISTANT), distinct=True
            ),
            helpful=Count(
                "messages__feedback", filter=Q(messages__feedback__rating=1), distinct=True
            ),
            unhelpful=Count(
                "messages__feedback", filter=Q(messages__feedback__rating=-1), distinct=True
            ),
        )
        .order_by("-updated_at")
    )
    if only == "negative":
        return conversations.filter(unhelpful__gt=0)
    if only == "any":
        return conversations.filter(Q(helpful__gt=0) | Q(unhelpful__gt=0))
    return conversations

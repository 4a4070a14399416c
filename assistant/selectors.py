"""Read-side queries for conversations: whose they are and what staff may review."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from ingest.models import KnowledgeBase

from .models import Conversation, Message


def conversations_owned(*, kb: KnowledgeBase, user, owner_key: str) -> QuerySet[Conversation]:
    """A caller's own conversations: by account when signed in, else by session or key."""
    owned = Conversation.objects.filter(kb=kb)
    if user is not None and user.is_authenticated:
        return owned.filter(Q(user=user) | Q(owner_key=owner_key) if owner_key else Q(user=user))
    if not owner_key:
        return owned.none()
    return owned.filter(owner_key=owner_key, user__isnull=True)


def conversations_with_feedback(*, kb: KnowledgeBase) -> QuerySet[Conversation]:
    """Every conversation of a knowledge base with its answer and feedback counts (staff)."""
    return (
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

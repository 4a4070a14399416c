"""Thumbs up or down on an answer, once per asker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .askers import Asker
from .models import Feedback, Message
from .screenshots import ChatInputError

if TYPE_CHECKING:
    from ingest.models import KnowledgeBase


def feedback_record(
    *, message: Message, asker: Asker, rating: int | str, comment: str = ""
) -> Feedback:
    """Record (or change) one asker's rating of an answer: 1 helpful, -1 not helpful."""
    if message.role != Message.Role.ASSISTANT:
        raise ChatInputError("Only answers take feedback.")
    if str(rating).strip() not in ("1", "-1"):
        raise ChatInputError("Rating must be 1 (helpful) or -1 (not helpful).")
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        owner_key=asker.owner_key,
        defaults={
            "rating": int(rating),
            "comment": comment.replace("\x00", "").strip()[:2000],
            "user": asker.user,
        },
    )
    return feedback


def feedback_record_own(
    *, kb: KnowledgeBase, asker: Asker, message_id: int, rating: object, comment: str = ""
) -> Feedback:
    """Rate an answer in one of the asker's own conversations in `kb` (the widget: its
    visitor's); anyone else's answer, or one in another knowledge base, is "No such
    answer." (404), so its existence does not leak."""
    mine = asker.conversations(kb=kb)
    message = Message.objects.filter(pk=message_id, conversation__in=mine).first()
    if message is None:
        raise ChatInputError("No such answer.", status=404)
    return feedback_record(message=message, asker=asker, rating=str(rating), comment=comment)

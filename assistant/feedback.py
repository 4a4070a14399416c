"""Thumbs up or down on an answer, once per asker."""

from __future__ import annotations

from .askers import Asker
from .models import Feedback, Message
from .screenshots import ChatInputError


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

"""{% history_groups %}: the chat page's Recent list grouped by date, as history.js draws it."""

from __future__ import annotations

from django import template
from django.utils import timezone

from assistant.conversations import history_groups as groups_of

register = template.Library()


@register.simple_tag
def history_groups(conversations, current=None) -> list[dict]:
    """The conversations grouped by period; `current` (the open one) is marked."""
    uid = str(current.uid) if current is not None else ""
    return groups_of(conversations=conversations, now=timezone.now(), current=uid)

"""A person's own conversations, as the chat page's history lists them: rename, delete
(with the screenshots stored for it), search, and the date labels of the list.

Who owns what is decided by the caller (``Asker.conversations``); these functions act on
a conversation already known to be the caller's.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import dateformat, timezone

from .models import Conversation, Message
from .screenshots import ChatInputError

logger = logging.getLogger("docent.chat")

MAX_TITLE_CHARS = 200  # Conversation.title's max_length
MAX_SEARCH_CHARS = 200  # a longer query is cut: nobody types more into a search box
MAX_SEARCH_WORDS = 8  # each word is one subquery; more would only slow the list down
PERIODS = ("Today", "Yesterday", "Previous 7 days", "Older")


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give a conversation a new title: whitespace runs become one space, ends trimmed.

    An empty title, or one longer than MAX_TITLE_CHARS characters, raises ChatInputError
    with status 400.
    """
    clean = " ".join(str(title).split())
    if not clean:
        raise ChatInputError("A conversation needs a title.", status=400)
    if len(clean) > MAX_TITLE_CHARS:
        raise ChatInputError(f"A title is at most {MAX_TITLE_CHARS} characters.", status=400)
    # An update, not save(): save() would bump updated_at (auto_now), and renaming must not
    # move the conversation to the top of the history.
    Conversation.objects.filter(pk=conversation.pk).update(title=clean)
    conversation.title = clean
    return conversation


def message_save_partial(*, message: Message, content: str, reasoning: str) -> None:
    """Store what an answer has said so far, without touching its other fields.

    Written every few seconds while the answer streams, so a server that dies mid-answer
    leaves the text it had sent on record; the final save writes everything.
    """
    Message.objects.filter(pk=message.pk).update(content=content, reasoning=reasoning)


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation, its messages and feedback, and its stored screenshots.

    The files go only once the rows are gone for good (after the commit), so a rolled-back
    delete never leaves messages pointing at missing screenshots.
    """
    folder = _screenshot_folder(conversation)
    stored = conversation.messages.values_list("images", flat=True)
    paths = {path for images in stored for path in images or [] if _inside(path, folder)}
    paths |= _stored_in(folder)  # also any file a failed answer left unrecorded
    with transaction.atomic():
        conversation.delete()
        transaction.on_commit(lambda: _files_delete(paths, folder))


def conversation_truncate(*, message: Message) -> None:
    """Remove a message and everything after it in its conversation, screenshots too (asking
    again from a question: regenerate, or edit and resend)."""
    folder = _screenshot_folder(message.conversation)
    later = message.conversation.messages.filter(pk__gte=message.pk)
    stored = later.values_list("images", flat=True)
    paths = {path for images in stored for path in images or [] if _inside(path, folder)}
    with transaction.atomic():
        later.delete()
        transaction.on_commit(lambda: _files_delete(paths, folder))


def conversations_search(
    *, conversations: QuerySet[Conversation], query: str
) -> QuerySet[Conversation]:
    """The conversations whose title or some message contains every word of `query`
    (case-insensitive); all of them for a blank query."""
    for word in query[:MAX_SEARCH_CHARS].split()[:MAX_SEARCH_WORDS]:
        in_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=word)
        conversations = conversations.filter(Q(title__icontains=word) | Exists(in_messages))
    return conversations


def conversation_period(*, when: datetime, now: datetime) -> str:
    """Which group of the history a time falls in: one of PERIODS, by calendar day in the
    server's time zone (TIME_ZONE), so the page and its script always agree."""
    day, today = timezone.localtime(when).date(), timezone.localtime(now).date()
    if day >= today:
        return PERIODS[0]
    if day == today - timedelta(days=1):
        return PERIODS[1]
    if day > today - timedelta(days=7):
        return PERIODS[2]
    return PERIODS[3]


def conversation_when(*, when: datetime, now: datetime) -> str:
    """The short date shown beside a title: "14:05" today and yesterday, the weekday within
    a week, then "3 Mar" (or "3 Mar 2024" in another year)."""
    local = timezone.localtime(when)
    period = conversation_period(when=when, now=now)
    if period in PERIODS[:2]:
        return dateformat.format(local, "H:i")
    if period == PERIODS[2]:
        return dateformat.format(local, "D")
    same_year = local.year == timezone.localtime(now).year
    return dateformat.format(local, "j M" if same_year else "j M Y")


def history_stamp(*, when: datetime, now: datetime) -> dict[str, str]:
    """The date fields of a history entry: ISO 8601 time, its period and short label."""
    return {
        "updated_at": when.isoformat(),
        "period": conversation_period(when=when, now=now),
        "when": conversation_when(when=when, now=now),
    }


def conversation_item(
    *, conversation: Conversation, now: datetime, current: str = ""
) -> dict[str, Any]:
    """One entry of the history, as the page renders it and the JSON list sends it."""
    return {
        "id": str(conversation.uid),
        "title": conversation.title or "Untitled conversation",
        **history_stamp(when=conversation.updated_at, now=now),
        "current": str(conversation.uid) == current,
    }


def history_groups(
    *, conversations: Iterable[Conversation], now: datetime, current: str = ""
) -> list[dict[str, Any]]:
    """Entries grouped by period, newest first: [{"period": ..., "items": [...]}, ...]."""
    groups: list[dict[str, Any]] = []
    for conversation in conversations:
        item = conversation_item(conversation=conversation, now=now, current=current)
        if not groups or groups[-1]["period"] != item["period"]:
            groups.append({"period": item["period"], "items": []})
        groups[-1]["items"].append(item)
    return groups


def _screenshot_folder(conversation: Conversation) -> str:
    return f"conversations/{conversation.uid}"  # where services._store_screenshots saves


def _inside(path: object, folder: str) -> bool:
    # Only files under the conversation's own folder: a path edited into Message.images
    # (the admin shows that field) must not delete anything else in the storage.
    return isinstance(path, str) and path.startswith(folder + "/") and ".." not in path


def _stored_in(folder: str) -> set[str]:
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return set()
    return {f"{folder}/{name}" for name in files}


def _files_delete(paths: Iterable[str], folder: str) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except OSError:
            logger.warning("Could not delete the stored screenshot %s", path)
    # A local storage keeps the emptied folder otherwise; other storages have no folders.
    with contextlib.suppress(NotImplementedError, OSError):
        os.rmdir(default_storage.path(folder))

"""Which documents a question may read: metadata filters, the same on every surface.

A filter names documents (by name or id), types, tags and an upload date range; the
parts combine with AND, the values within one part with OR. The chat API, /v1, MCP and
the chat page's "ask only these documents" all read the same JSON object:

    {"documents": ["manual.pdf", 12], "kinds": ["pdf"], "tags": ["billing"],
     "uploaded_after": "2026-01-01", "uploaded_before": "2026-12-31T23:59:59Z"}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .models import DocumentKind, DocumentStatus, KnowledgeBase

MAX_VALUES = 200  # per part: a longer list is a mistake, or an attempt to make queries slow


class FilterError(ValueError):
    """A filter that can't be read; the message says which part and why."""


@dataclass(frozen=True)
class DocumentFilter:
    documents: tuple[str, ...] = ()  # names or ids
    kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None

    def __bool__(self) -> bool:
        return any(
            (self.documents, self.kinds, self.tags, self.uploaded_after, self.uploaded_before)
        )


def document_filter_parse(value: Any) -> DocumentFilter:
    """A filter from its JSON object (None or {} for none); FilterError if it is malformed."""
    if value is None:
        return DocumentFilter()
    if not isinstance(value, dict):
        raise FilterError('filters must be an object such as {"documents": ["manual.pdf"]}.')
    unknown = set(value) - {"documents", "kinds", "tags", "uploaded_after", "uploaded_before"}
    if unknown:
        raise FilterError(
            f"Unknown filter {sorted(unknown)[0]!r}: use documents, kinds, tags, "
            "uploaded_after or uploaded_before."
        )
    kinds = _strings(value, "kinds")
    wrong = [k for k in kinds if k not in DocumentKind.values]
    if wrong:
        raise FilterError(
            f"Unknown document type {wrong[0]!r}: one of {', '.join(DocumentKind.values)}."
        )
    return DocumentFilter(
        documents=_strings(value, "documents"),
        kinds=kinds,
        tags=_strings(value, "tags"),
        uploaded_after=_moment(value, "uploaded_after", end=False),
        uploaded_before=_moment(value, "uploaded_before", end=True),
    )


def _strings(value: dict, name: str) -> tuple[str, ...]:
    items = value.get(name) or []
    if isinstance(items, (str, int)):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, (str, int)) for i in items):
        raise FilterError(f"filters.{name} must be a list of names.")
    if len(items) > MAX_VALUES:
        raise FilterError(f"filters.{name} may hold at most {MAX_VALUES} values.")
    return tuple(str(i).strip() for i in items if str(i).strip())


def _moment(value: dict, name: str, *, end: bool) -> datetime | None:
    """An ISO date or date-time; a bare date covers its whole day (UTC)."""
    raw = value.get(name)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise FilterError(f"filters.{name} must be an ISO date such as 2026-01-31.")
    try:  # a bare date first: parse_datetime would read it as that day's midnight
        day = parse_date(raw)
        moment = (
            datetime.combine(day, time.max if end else time.min) if day else parse_datetime(raw)
        )
    except ValueError:
        moment = None
    if moment is None:
        raise FilterError(f"filters.{name} must be an ISO date such as 2026-01-31.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def documents_filtered(*, kb: KnowledgeBase, filters: DocumentFilter) -> tuple[int, ...] | None:
    """The ids of `kb`'s ready documents the filter lets through; None for no filter.

    FilterError when it lets none through, so that the asker hears why nothing was
    searched instead of getting "no match"."""
    if not filters:
        return None
    found = kb.documents.filter(status=DocumentStatus.READY)
    if filters.documents:
        numbers = [int(d) for d in filters.documents if d.isdigit()]
        names = [d for d in filters.documents if not d.isdigit()]
        found = found.filter(Q(pk__in=numbers) | Q(filename__in=names))
    if filters.kinds:
        found = found.filter(kind__in=filters.kinds)
    if filters.tags:
        found = found.filter(tag__in=filters.tags)
    if filters.uploaded_after:
        found = found.filter(created_at__gte=filters.uploaded_after)
    if filters.uploaded_before:
        found = found.filter(created_at__lte=filters.uploaded_before)
    ids = tuple(found.values_list("pk", flat=True).distinct())
    if not ids:
        raise FilterError(f"No ready document in {kb.name} matches these filters.")
    return ids

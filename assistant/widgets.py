"""Embeddable widget: origin checks, signed short-lived session tokens, daily quotas.

The embedding page never holds an API key. On load the widget asks for a session; the
browser's Origin header (which page script cannot forge) must be one the widget's
owner allowed. The token it gets is signed with SECRET_KEY and binds the widget, the
origin and a server-issued visitor id, and it expires. Every later call re-checks the
token, the Origin header against the token, and the quota.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import Widget, WidgetUsage

_TOKEN_SALT = "docent.widget.session"  # noqa: S105 - a namespace, not a secret
_VISITOR_SALT = "docent.widget.visitor"


class WidgetDenied(Exception):
    """The request may not use this widget; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 403, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class WidgetSession:
    widget: Widget
    origin: str
    visitor: str  # server-issued random id

    @property
    def owner_key(self) -> str:
        return f"widget:{self.widget.pk}:{self.visitor}"


def widget_for(*, public_id: str) -> Widget:
    widget = Widget.objects.select_related("kb").filter(public_id=public_id, enabled=True).first()
    if widget is None:
        raise WidgetDenied("This help widget does not exist or is turned off.", status=404)
    return widget


def origin_allowed(*, widget: Widget, origin: str | None) -> bool:
    return origin is not None and origin.rstrip("/") in widget.origins


def session_start(
    *, widget: Widget, origin: str | None, visitor_token: str = ""
) -> tuple[str, str]:
    """(session token, visitor token) for a page on an allowed origin.

    A returning visitor presents their visitor token (kept in the page's localStorage)
    and keeps their id; anyone else gets a fresh random one.
    """
    if origin is None or not origin_allowed(widget=widget, origin=origin):
        raise WidgetDenied("This help widget is not available on this website.", status=403)
    visitor = None
    if visitor_token:
        try:
            data = signing.loads(visitor_token, salt=_VISITOR_SALT)
            if data.get("w") == widget.public_id:
                visitor = data.get("v")
        except signing.BadSignature:
            visitor = None
    visitor = visitor or secrets.token_urlsafe(12)
    token = signing.dumps(
        {"w": widget.public_id, "o": origin.rstrip("/"), "v": visitor}, salt=_TOKEN_SALT
    )
    return token, signing.dumps({"w": widget.public_id, "v": visitor}, salt=_VISITOR_SALT)


def session_verify(
    *, widget: Widget, token: str, origin: str | None, check_origin: bool = True
) -> WidgetSession:
    """The session a request carries, or WidgetDenied (401 bad/expired token, 403 wrong origin).

    check_origin is off only for top-level navigations (citation links), where browsers
    send no Origin header; the signed token still binds the widget and visitor.
    """
    try:
        data = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.WIDGET_SESSION_SECONDS)
    except signing.SignatureExpired as exc:
        raise WidgetDenied("The chat session expired; please reload.", status=401) from exc
    except signing.BadSignature as exc:
        raise WidgetDenied("Invalid chat session.", status=401) from exc
    if data.get("w") != widget.public_id:
        raise WidgetDenied("This session belongs to another widget.", status=403)
    if check_origin and (not origin or origin.rstrip("/") != data.get("o")):
        raise WidgetDenied("This session belongs to another website.", status=403)
    if not origin_allowed(widget=widget, origin=data.get("o")):
        raise WidgetDenied("This help widget is not available on this website.", status=403)
    return WidgetSession(widget, data["o"], data["v"])


def quota_consume(*, session: WidgetSession, ip: str) -> None:
    """Count one question against the visitor's and the IP address's daily quotas.

    Raises WidgetDenied(429) with the seconds until the quotas reset (midnight UTC).
    """
    widget = session.widget
    today = timezone.now().astimezone(UTC).date()
    limits = (
        (f"visitor:{session.visitor}", widget.daily_quota_per_visitor),
        (f"ip:{ip}", widget.daily_quota_per_ip),
    )
    with transaction.atomic():
        for key, limit in limits:
            used = _increment(widget, today, key)
            if used > limit:
                transaction.set_rollback(True)
                tomorrow = datetime.combine(
                    today + timedelta(days=1), datetime.min.time(), tzinfo=UTC
                )
                wait = int((tomorrow - timezone.now()).total_seconds()) + 1
                raise WidgetDenied(
                    "You have reached today's limit of questions. Please come back tomorrow.",
                    status=429,
                    retry_after=wait,
                )


def _increment(widget: Widget, day, key: str) -> int:
    updated = WidgetUsage.objects.filter(widget=widget, day=day, key=key).update(
        count=F("count") + 1
    )
    if not updated:
        try:
            with transaction.atomic():
                WidgetUsage.objects.create(widget=widget, day=day, key=key, count=1)
        except IntegrityError:  # created concurrently
            WidgetUsage.objects.filter(widget=widget, day=day, key=key).update(count=F("count") + 1)
    return WidgetUsage.objects.get(widget=widget, day=day, key=key).count


def client_ip(request) -> str:
    """The caller's address; X-Forwarded-For only when running behind a trusted proxy."""
    if settings.TRUST_X_FORWARDED_FOR and request.headers.get("x-forwarded-for"):
        return request.headers["x-forwarded-for"].split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")

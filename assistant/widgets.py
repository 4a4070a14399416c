"""Embeddable widget: origin checks, signed short-lived session tokens, daily quotas.

The embedding page never holds an API key. On load the widget asks for a session; the
browser's Origin header (which page script cannot forge) must be one the widget's
owner allowed. The token it gets is signed with SECRET_KEY and binds the widget, the
origin and a server-issued visitor id, and it expires. Every later call re-checks the
token, the Origin header against the token, and the quota.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from .citelinks import Citation, CitationDenied, citation_fragment, citation_open, citation_sign
from .models import Widget
from .origins import origin_of_request
from .quotas import Limit, QuotaExceeded, quota_consume

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
    visitor: str  # server-issued random id: whose conversations these are
    quota_key: str = ""  # whose quota the questions count against; "": the visitor's

    @property
    def owner_key(self) -> str:
        return f"widget:{self.widget.pk}:{self.visitor}"

    @property
    def quota_visitor(self) -> str:
        return self.quota_key or self.visitor


def widget_for(*, public_id: str) -> Widget:
    widget = Widget.objects.select_related("kb").filter(public_id=public_id, enabled=True).first()
    if widget is None:
        raise WidgetDenied("This help widget does not exist or is turned off.", status=404)
    return widget


def origin_allowed(*, widget: Widget, origin: str | None) -> bool:
    """Whether a request's Origin header is one the widget's owner listed (assistant.origins
    normalises both sides the same way)."""
    normal = origin_of_request(origin)
    return normal is not None and normal in widget.origins


def session_start(
    *, widget: Widget, origin: str | None, ip: str, visitor_token: str = ""
) -> tuple[str, str]:
    """(session token, visitor token) for a page on an allowed origin.

    A returning visitor presents their visitor token (kept in the page's localStorage)
    and keeps their id; anyone else gets a fresh random one. The Origin header only
    holds browsers to the allowed sites: any other client can claim any origin, which is
    why quotas count per IP address too and a session reaches only what was cited to it.
    """
    origin = origin_of_request(origin)
    if origin is None or not origin_allowed(widget=widget, origin=origin):
        raise WidgetDenied("This help widget is not available on this website.", status=403)
    visitor, quota = None, None
    if visitor_token:
        try:
            data = signing.loads(visitor_token, salt=_VISITOR_SALT)
            if data.get("w") == widget.public_id:
                visitor, quota = data.get("v"), data.get("q")
        except signing.BadSignature:
            visitor = None
    if not visitor:
        visitor, quota = secrets.token_urlsafe(12), _new_visitor_quota(widget, ip)
    claim = {"w": widget.public_id, "v": visitor, "q": quota or visitor}
    token = signing.dumps({**claim, "o": origin}, salt=_TOKEN_SALT)
    return token, signing.dumps(claim, salt=_VISITOR_SALT)


def _new_visitor_quota(widget: Widget, ip: str) -> str | None:
    """None (a quota of its own) while this address has had few new visitors today.

    Past WIDGET_VISITORS_PER_IP, everyone new from the address counts against one shared
    visitor quota (their conversations stay their own): dropping the visitor token no
    longer buys a fresh quota.
    """
    try:
        quota_consume(
            scope=f"widget-visitors:{widget.pk}",
            limits=[Limit(f"ip:{ip}", settings.WIDGET_VISITORS_PER_IP)],
            message="",
        )
    except QuotaExceeded:
        digest = hashlib.sha256(f"{settings.SECRET_KEY}:{widget.pk}:{ip}".encode())
        return "shared-" + digest.hexdigest()[:16]
    return None


def session_verify(*, widget: Widget, token: str, origin: str | None) -> WidgetSession:
    """The session a request carries, or WidgetDenied (401 bad/expired token, 403 wrong origin)."""
    try:
        data = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.WIDGET_SESSION_SECONDS)
    except signing.SignatureExpired as exc:
        raise WidgetDenied("The chat session expired; please reload.", status=401) from exc
    except signing.BadSignature as exc:
        raise WidgetDenied("Invalid chat session.", status=401) from exc
    if data.get("w") != widget.public_id:
        raise WidgetDenied("This session belongs to another widget.", status=403)
    if origin_of_request(origin) != data.get("o"):
        raise WidgetDenied("This session belongs to another website.", status=403)
    if not origin_allowed(widget=widget, origin=data.get("o")):
        raise WidgetDenied("This help widget is not available on this website.", status=403)
    return WidgetSession(widget, data["o"], data["v"], data.get("q", ""))


def citation_link(*, session: WidgetSession, source: dict) -> str:
    """A signed, short-lived path that opens one cited source, and nothing else: whoever
    holds it sees those pages (or, in a document without pages, that passage) for
    WIDGET_CITATION_SECONDS, while the widget is on."""
    signed = citation_sign(holder=f"widget:{session.widget.public_id}", source=source)
    return f"/widget/{session.widget.public_id}/cite/{signed}/{citation_fragment(source)}"


def citation_verify(*, widget: Widget, signed: str) -> Citation:
    """What a citation link may open, or WidgetDenied (404 unknown, 410 expired)."""
    try:
        citation = citation_open(signed=signed, max_age=settings.WIDGET_CITATION_SECONDS)
    except CitationDenied as exc:
        raise WidgetDenied(str(exc), status=exc.status) from exc
    if citation.holder != f"widget:{widget.public_id}":
        raise WidgetDenied("No such source.", status=404)
    return citation

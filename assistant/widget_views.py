"""Endpoints the embedded widget calls from other websites (CORS, token auth, no cookies)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.models import Chunk, Document

from .askers import Asker
from .citation_views import Reader, citation_gone, citation_page, citation_page_image
from .feedback import feedback_record_own
from .http import (
    chat_input_response,
    decode_images,
    error_response,
    json_object,
    sse_response,
    uuid_or_none,
)
from .models import Widget
from .presenters import (
    Link,
    widget_events,
    widget_transcript,
)
from .quotas import client_ip
from .services import ChatInputError, answer_stream
from .widgets import (
    WidgetDenied,
    WidgetSession,
    citation_link,
    citation_verify,
    session_start,
    session_verify,
    widget_for,
)


def _denied(exc: WidgetDenied) -> JsonResponse:
    return error_response(str(exc), exc.status, retry_after=exc.retry_after)


def _session(request: HttpRequest, public_id: str) -> WidgetSession:
    widget = widget_for(public_id=public_id)
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return session_verify(widget=widget, token=token, origin=request.headers.get("origin"))


def _links(request: HttpRequest, session: WidgetSession) -> Link:
    """Citations open a signed link to exactly the cited pages (no session token in it)."""

    def link(source: dict) -> str:
        return request.build_absolute_uri(citation_link(session=session, source=source))

    return link


@csrf_exempt
@require_POST
def widget_session(request: HttpRequest, public_id: str) -> JsonResponse:
    try:
        widget = widget_for(public_id=public_id)
        token, visitor = session_start(
            widget=widget,
            origin=request.headers.get("origin"),
            ip=client_ip(request),
            visitor_token=str(json_object(request.body).get("visitor", "")),
        )
    except WidgetDenied as exc:
        return _denied(exc)
    except ChatInputError as exc:
        return chat_input_response(exc)
    expires = settings.WIDGET_SESSION_SECONDS
    body = {"token": token, "visitor": visitor, "expires_in": expires, "config": _config(widget)}
    return JsonResponse(body)


def _config(widget: Widget) -> dict:
    """What the widget script needs to draw itself."""
    return {
        "title": widget.title,
        "greeting": widget.greeting,
        "starters": widget.starters,
        "color": widget.color,
        "position": widget.position,
        "screenshots": widget.accept_screenshots,
        "max_chars": widget.max_message_chars,
    }


@csrf_exempt
@require_POST
def widget_chat(request: HttpRequest, public_id: str) -> HttpResponseBase:
    try:
        session = _session(request, public_id)
        body = json_object(request.body)
        events = answer_stream(
            kb=session.widget.kb,
            asker=Asker.for_widget(session, ip=client_ip(request)),
            question=str(body.get("question", "")),
            images=decode_images(body.get("images")),
            conversation_uid=body.get("conversation") or None,
        )
    except WidgetDenied as exc:
        return _denied(exc)
    except ChatInputError as exc:
        return chat_input_response(exc)
    return sse_response(request, widget_events(events, _links(request, session)))


@require_GET
def widget_conversation(request: HttpRequest, public_id: str, uid: str) -> JsonResponse:
    try:
        session = _session(request, public_id)
    except WidgetDenied as exc:
        return _denied(exc)
    asker = Asker.for_widget(session, ip="")
    conversation = asker.conversations(kb=session.widget.kb).filter(uid=uuid_or_none(uid) or "")
    found = conversation.first()
    if found is None:
        return error_response("No such conversation.", 404)
    link = _links(request, session)
    messages = widget_transcript(conversation=found, owner_key=asker.owner_key, link=link)
    return JsonResponse({"id": str(found.uid), "messages": messages})


@csrf_exempt  # authorised by the session token in a header, never by a cookie
@require_POST
def widget_feedback(request: HttpRequest, public_id: str, pk: int) -> JsonResponse:
    """A visitor's thumbs up (1) or down (-1) on an answer in their own conversation."""
    try:
        session = _session(request, public_id)
        body = json_object(request.body)
        record = feedback_record_own(
            kb=session.widget.kb,
            asker=Asker.for_widget(session, ip=""),
            message_id=pk,
            rating=body.get("rating", ""),
            comment=str(body.get("comment", "")),
        )
    except WidgetDenied as exc:
        return _denied(exc)
    except ChatInputError as exc:
        return chat_input_response(exc)
    return JsonResponse({"message_id": pk, "rating": record.rating})


class _Gone(Exception):
    """The citation is genuine, but its source is no longer in the knowledge base."""

    def __init__(self, widget: Widget) -> None:
        self.widget = widget


def _cited(public_id: str, signed: str) -> tuple[Widget, Document, list[Chunk]]:
    """The widget, document and chunks a signed citation names; WidgetDenied or _Gone."""
    widget = widget_for(public_id=public_id)
    citation = citation_verify(widget=widget, signed=signed)
    document = Document.objects.filter(pk=citation.document_id, kb=widget.kb).first()
    cited = list(Chunk.objects.filter(document=document, pk__in=citation.chunk_ids))
    if document is None or not cited:
        raise _Gone(widget)
    return widget, document, cited


@require_GET
def widget_citation(request: HttpRequest, public_id: str, signed: str) -> HttpResponse:
    """One cited source, opened from the widget: only the pages (or passage) it cites."""
    try:
        widget, document, cited = _cited(public_id, signed)
    except WidgetDenied as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    except _Gone as gone:
        return citation_gone(request, reader=_reader(gone.widget))
    base = reverse("widget-citation", args=[public_id, signed])
    return citation_page(request, document=document, cited=cited, base=base, reader=_reader(widget))


def _reader(widget: Widget) -> Reader:
    """A visitor's citation page carries the widget's title and colour."""
    return Reader(title=widget.title, color=widget.color)


@require_GET
def widget_citation_page_image(
    request: HttpRequest, public_id: str, signed: str, page: int
) -> HttpResponseBase:
    """A page image of a widget citation: only a page its chunks are on, while it is valid."""
    try:
        _, document, cited = _cited(public_id, signed)
    except WidgetDenied as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    except _Gone as exc:
        raise Http404("This source is no longer in the knowledge base.") from exc
    return citation_page_image(document=document, cited=cited, page=page)

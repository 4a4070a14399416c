"""Endpoints the embedded widget calls from other websites (CORS, token auth, no cookies)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.models import Chunk, Document
from ingest.selectors import document_pages

from .askers import Asker
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
    answer_html,
    linked,
    message_citations,
    visitor_error,
    widget_events,
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
    mine = Asker.for_widget(session, ip="").conversations(kb=session.widget.kb)
    conversation = mine.filter(uid=uuid_or_none(uid) or "").first()
    if conversation is None:
        return error_response("No such conversation.", 404)
    link = _links(request, session)
    messages = []
    for message in conversation.messages.exclude(status="streaming"):
        item: dict[str, object] = {"role": message.role, "text": message.content}
        item["error"] = visitor_error(None) if message.error else ""
        item["sources"] = linked(message.sources, link)
        if message.role == "assistant":
            item["html"] = answer_html(message.content, message.sources, link)
            item["citations"] = message_citations(message.content, message.sources, link)
        messages.append(item)
    return JsonResponse({"id": str(conversation.uid), "messages": messages})


@require_GET
def widget_citation(request: HttpRequest, public_id: str, signed: str) -> HttpResponse:
    """One cited source, opened from the widget: only the pages (or passage) it cites."""
    try:
        widget = widget_for(public_id=public_id)
        citation = citation_verify(widget=widget, signed=signed)
    except WidgetDenied as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    document = Document.objects.filter(pk=citation.document_id, kb=widget.kb).first()
    cited = Chunk.objects.filter(document=document, pk__in=citation.chunk_ids)
    if document is None or not cited.exists():
        raise Http404("This source is no longer in the knowledge base.")
    pages = document_pages(document=document, cited=cited)
    selected = pages[0]["number"] if pages else 0
    context = {"document": document, "pages": pages, "selected": selected, "embedded": True}
    return render(request, "ingest/document.html", context)

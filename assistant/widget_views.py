"""Endpoints the embedded widget calls from other websites (CORS, token auth, no cookies)."""

from __future__ import annotations

import json
from itertools import groupby
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.models import Document
from ingest.pipeline.chunk import merge_chunk_texts

from .askers import Asker
from .http import (
    chat_input_response,
    decode_images,
    error_response,
    sse_response,
    uuid_or_none,
)
from .models import Widget
from .presenters import Link, answer_html, linked, widget_events
from .services import ChatInputError, answer_stream
from .widgets import (
    WidgetDenied,
    WidgetSession,
    client_ip,
    quota_consume,
    session_start,
    session_verify,
    widget_for,
)


def _denied(exc: WidgetDenied) -> JsonResponse:
    return error_response(str(exc), exc.status, retry_after=exc.retry_after)


def _token(request: HttpRequest) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def _session(request: HttpRequest, public_id: str) -> WidgetSession:
    widget = widget_for(public_id=public_id)
    origin = request.headers.get("origin")
    return session_verify(widget=widget, token=_token(request), origin=origin)


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ChatInputError("Malformed request: send a JSON object.", status=400)
    return body


def _links(request: HttpRequest, session: WidgetSession) -> Link:
    """Citations open the widget's own document view, which the visitor's token unlocks."""
    token = _token(request)

    def link(source: dict) -> str:
        query: dict[str, object] = {"t": token}
        fragment = ""
        if source.get("pages"):
            query["page"] = source["pages"][0]
            fragment = f"#page-{source['pages'][0]}"
        path = f"/widget/{session.widget.public_id}/documents/{source['document_id']}/"
        return request.build_absolute_uri(f"{path}?{urlencode(query)}") + fragment

    return link


@csrf_exempt
@require_POST
def widget_session(request: HttpRequest, public_id: str) -> JsonResponse:
    try:
        widget = widget_for(public_id=public_id)
        visitor_token = str(_json_body(request).get("visitor", ""))
        token, visitor = session_start(
            widget=widget, origin=request.headers.get("origin"), visitor_token=visitor_token
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
        body = _json_body(request)
        events = answer_stream(
            kb=session.widget.kb,
            asker=Asker.for_widget(session),
            question=str(body.get("question", "")),
            images=decode_images(body.get("images")),
            conversation_uid=body.get("conversation") or None,
        )
        quota_consume(session=session, ip=client_ip(request))
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
    mine = Asker.for_widget(session).conversations(kb=session.widget.kb)
    conversation = mine.filter(uid=uuid_or_none(uid) or "").first()
    if conversation is None:
        return error_response("No such conversation.", 404)
    link = _links(request, session)
    messages = []
    for message in conversation.messages.exclude(status="streaming"):
        item: dict[str, object] = {"role": message.role, "text": message.content}
        item["error"] = message.error
        item["sources"] = linked(message.sources, link)
        if message.role == "assistant":
            item["html"] = answer_html(message.content, message.sources, link)
        messages.append(item)
    return JsonResponse({"id": str(conversation.uid), "messages": messages})


@require_GET
def widget_document(request: HttpRequest, public_id: str, pk: int) -> HttpResponse:
    """A cited document, opened from the widget: the token in the link proves the session."""
    try:
        widget = widget_for(public_id=public_id)
        token = request.GET.get("t", "")
        session_verify(widget=widget, token=token, origin=None, check_origin=False)
    except WidgetDenied as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    document = Document.objects.filter(pk=pk, kb=widget.kb).first()
    if document is None:
        raise Http404("No such document")
    chunks = document.chunks.order_by("ordinal").only("page", "text")
    pages = [
        {"number": page, "text": merge_chunk_texts([c.text for c in group])}
        for page, group in groupby(chunks, key=lambda c: c.page)
    ]
    selected = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 0
    context = {"document": document, "pages": pages, "selected": selected, "embedded": True}
    return render(request, "ingest/document.html", context)

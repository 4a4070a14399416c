"""Endpoints the embedded widget calls from other websites (CORS, token auth, no cookies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.models import Document
from ingest.pipeline.chunk import merge_chunk_texts

from .models import Conversation
from .rendering import render_answer
from .services import ChatEvent, ChatInputError, answer_stream, chat_tools, screenshot_prepare
from .streaming import iterate_in_thread, sse_events
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
    response = JsonResponse({"error": str(exc)}, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _session(request: HttpRequest, public_id: str) -> WidgetSession:
    widget = widget_for(public_id=public_id)
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return session_verify(widget=widget, token=token, origin=request.headers.get("origin"))


def _document_url(request: HttpRequest, session: WidgetSession, token: str, source: dict) -> str:
    query = {"t": token}
    fragment = ""
    if source.get("pages"):
        query["page"] = source["pages"][0]
        fragment = f"#page-{source['pages'][0]}"
    path = (
        f"/widget/{session.widget.public_id}/documents/{source['document_id']}/?{urlencode(query)}"
    )
    return request.build_absolute_uri(path) + fragment


@csrf_exempt
@require_POST
def widget_session(request: HttpRequest, public_id: str) -> JsonResponse:
    try:
        widget = widget_for(public_id=public_id)
        body = json.loads(request.body or b"{}")
        token, visitor = session_start(
            widget=widget,
            origin=request.headers.get("origin"),
            visitor_token=str(body.get("visitor", "")),
        )
    except WidgetDenied as exc:
        return _denied(exc)
    except (ValueError, AttributeError):
        return JsonResponse({"error": "Malformed request."}, status=400)
    return JsonResponse(
        {
            "token": token,
            "visitor": visitor,
            "expires_in": settings.WIDGET_SESSION_SECONDS,
            "config": {
                "title": widget.title,
                "greeting": widget.greeting,
                "starters": widget.starters,
                "color": widget.color,
                "position": widget.position,
                "screenshots": widget.accept_screenshots,
                "max_chars": widget.max_message_chars,
            },
        }
    )


@csrf_exempt
@require_POST
def widget_chat(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        session = _session(request, public_id)
        body = json.loads(request.body or b"{}")
        question = str(body.get("question", ""))
        images = body.get("images") or []
        if len(question) > session.widget.max_message_chars:
            raise ChatInputError(
                f"Please keep questions under {session.widget.max_message_chars} characters."
            )
        if images and not session.widget.accept_screenshots:
            raise ChatInputError("This help widget does not accept screenshots.")
        conversation = None
        if body.get("conversation"):
            conversation = Conversation.objects.filter(
                kb=session.widget.kb, owner_key=session.owner_key, uid=_uuid(body["conversation"])
            ).first()
            if conversation is None:
                return JsonResponse({"error": "That conversation is not yours."}, status=404)
        shots = [screenshot_prepare(data=_decode(image)) for image in images[:8]]
        events = answer_stream(
            kb=session.widget.kb,
            question=question,
            tools=chat_tools(session.widget.kb),
            conversation=conversation,
            screenshots=shots,
            owner_key=session.owner_key,
        )
        quota_consume(session=session, ip=client_ip(request))
    except WidgetDenied as exc:
        return _denied(exc)
    except ChatInputError as exc:
        return JsonResponse({"error": str(exc)}, status=422)
    except (ValueError, AttributeError, TypeError):
        return JsonResponse({"error": "Malformed request."}, status=400)
    token = request.headers["authorization"].removeprefix("Bearer ").strip()
    relinked = _relink(events, lambda source: _document_url(request, session, token, source))
    response = StreamingHttpResponse(
        iterate_in_thread(lambda: sse_events(relinked)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    return response


def _relink(events: Iterator[ChatEvent], url_for) -> Iterator[ChatEvent]:
    """Citations point at the widget's own document view, which the visitor can open.

    A reasoning model's trace is for the site's own staff, never for a visitor.
    """
    for event in events:
        if event.kind == "reasoning":
            continue
        if event.kind == "sources":
            sources = [{**s, "url": url_for(s)} for s in event.data["sources"]]
            event = ChatEvent("sources", {**event.data, "sources": sources})
        yield event


@require_GET
def widget_conversation(request: HttpRequest, public_id: str, uid: str) -> JsonResponse:
    try:
        session = _session(request, public_id)
    except WidgetDenied as exc:
        return _denied(exc)
    conversation = Conversation.objects.filter(
        kb=session.widget.kb, owner_key=session.owner_key, uid=_uuid(uid)
    ).first()
    if conversation is None:
        return JsonResponse({"error": "No such conversation."}, status=404)
    token = request.headers["authorization"].removeprefix("Bearer ").strip()
    messages = []
    for message in conversation.messages.exclude(status="streaming"):
        sources = [{**s, "url": _document_url(request, session, token, s)} for s in message.sources]
        item = {
            "role": message.role,
            "text": message.content,
            "sources": sources,
            "error": message.error,
        }
        if message.role == "assistant":
            item["html"] = render_answer(message.content, [s["url"] for s in sources])
        messages.append(item)
    return JsonResponse({"id": str(conversation.uid), "messages": messages})


@require_GET
def widget_document(request: HttpRequest, public_id: str, pk: int) -> HttpResponse:
    """A cited document, opened from the widget: the token in the link proves the session."""
    try:
        widget = widget_for(public_id=public_id)
        session_verify(
            widget=widget, token=request.GET.get("t", ""), origin=None, check_origin=False
        )
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


def _uuid(value) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _decode(value: str) -> bytes:
    import base64
    import binascii

    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChatInputError("Images must be sent as base64 data URLs.") from exc

"""Chat pages: thin views that validate, call a service and stream its events."""

from __future__ import annotations

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from ingest.models import KnowledgeBase

from .models import Conversation
from .rendering import render_answer
from .services import ChatInputError, answer_stream, chat_tools, screenshot_prepare
from .streaming import iterate_in_thread, sse_events


def owner_key(request: HttpRequest) -> str:
    """Who owns anonymous conversations: the browser session."""
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def conversations_for(request: HttpRequest, kb: KnowledgeBase):
    owned = Conversation.objects.filter(kb=kb)
    if request.user.is_authenticated:
        return owned.filter(user=request.user) | owned.filter(owner_key=owner_key(request))
    return owned.filter(owner_key=owner_key(request))


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    kbs = list(KnowledgeBase.objects.all())
    slug = request.GET.get("kb")
    kb = next((k for k in kbs if k.slug == slug), kbs[0] if kbs else None)
    conversation = None
    messages = []
    if kb is not None and request.GET.get("c"):
        conversation = conversations_for(request, kb).filter(uid=_uuid(request.GET["c"])).first()
        if conversation is None:
            raise Http404("No such conversation")
        for message in conversation.messages.all():
            urls = [s["url"] for s in message.sources]
            message.html = (
                render_answer(message.content, urls) if message.role == "assistant" else ""
            )
            messages.append(message)
    context = {
        "kbs": kbs,
        "kb": kb,
        "conversation": conversation,
        "chat_messages": messages,
        "recent": conversations_for(request, kb)[:20] if kb else [],
    }
    return render(request, "assistant/chat.html", context)


@require_POST
def chat_stream(request: HttpRequest) -> HttpResponse:
    kb = KnowledgeBase.objects.filter(slug=request.POST.get("kb", "")).first()
    if kb is None:
        return JsonResponse({"error": "Choose a knowledge base."}, status=400)
    conversation = None
    if request.POST.get("conversation"):
        conversation = (
            conversations_for(request, kb).filter(uid=_uuid(request.POST["conversation"])).first()
        )
        if conversation is None:
            return JsonResponse({"error": "That conversation does not exist."}, status=404)
    try:
        screenshots = [screenshot_prepare(data=f.read()) for f in request.FILES.getlist("images")]
        events = answer_stream(
            kb=kb,
            question=request.POST.get("question", ""),
            tools=chat_tools(),
            conversation=conversation,
            screenshots=screenshots,
            owner_key=owner_key(request),
            user=request.user,
        )
    except ChatInputError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    response = StreamingHttpResponse(
        iterate_in_thread(lambda: sse_events(events)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: don't hold the stream back
    return response


def _uuid(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@require_GET
def conversation_list(request: HttpRequest, slug: str) -> JsonResponse:
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    items = [
        {"id": str(c.uid), "title": c.title, "updated_at": c.updated_at.isoformat()}
        for c in conversations_for(request, kb)[:50]
    ]
    return JsonResponse({"conversations": items})

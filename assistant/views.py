"""Chat pages: thin views that validate, call a service and stream its events."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from ingest.access import kbs_readable
from ingest.models import KnowledgeBase

from .models import Message
from .rendering import render_answer
from .selectors import conversations_owned, conversations_with_feedback
from .services import ChatInputError, answer_stream, chat_tools, feedback_record, screenshot_prepare
from .streaming import iterate_in_thread, sse_events


def owner_key(request: HttpRequest) -> str:
    """Who owns anonymous conversations: the browser session."""
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def conversations_for(request: HttpRequest, kb: KnowledgeBase):
    return conversations_owned(kb=kb, user=request.user, owner_key=owner_key(request))


def readable_kb(request: HttpRequest, slug: str) -> KnowledgeBase | None:
    return kbs_readable(user=request.user).filter(slug=slug).first()


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    kbs = list(kbs_readable(user=request.user))
    slug = request.GET.get("kb")
    kb = next((k for k in kbs if k.slug == slug), kbs[0] if kbs else None)
    if slug and (kb is None or kb.slug != slug):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such knowledge base")
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
    kb = readable_kb(request, request.POST.get("kb", ""))
    if kb is None:
        return JsonResponse({"error": "Choose a knowledge base you have access to."}, status=404)
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
            tools=chat_tools(kb),
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


@require_POST
def message_feedback(request: HttpRequest, pk: int) -> JsonResponse:
    message = Message.objects.select_related("conversation__kb").filter(pk=pk).first()
    kb = readable_kb(request, message.conversation.kb.slug) if message else None
    if kb is None or not conversations_for(request, kb).filter(pk=message.conversation_id).exists():
        return JsonResponse({"error": "No such answer."}, status=404)
    try:
        rating = int(request.POST.get("rating", "0"))
        record = feedback_record(
            message=message,
            rating=rating,
            comment=request.POST.get("comment", ""),
            user=request.user,
            owner_key=owner_key(request),
        )
    except (ValueError, ChatInputError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"rating": record.rating, "comment": record.comment})


@require_GET
def conversation_list(request: HttpRequest, slug: str) -> JsonResponse:
    kb = readable_kb(request, slug)
    if kb is None:
        raise Http404("No such knowledge base")
    items = [
        {"id": str(c.uid), "title": c.title, "updated_at": c.updated_at.isoformat()}
        for c in conversations_for(request, kb)[:50]
    ]
    return JsonResponse({"conversations": items})


@staff_member_required
@require_GET
def conversations_review(request: HttpRequest, slug: str) -> HttpResponse:
    """Staff: every conversation of a knowledge base, with its feedback counts."""
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    only = request.GET.get("feedback", "")
    conversations = conversations_with_feedback(kb=kb)
    if only == "negative":
        conversations = conversations.filter(unhelpful__gt=0)
    elif only == "any":
        conversations = conversations.filter(Q(helpful__gt=0) | Q(unhelpful__gt=0))
    context = {"kb": kb, "conversations": conversations[:500], "only": only}
    return render(request, "assistant/conversations.html", context)


@staff_member_required
@require_GET
def conversation_review(request: HttpRequest, slug: str, uid: str) -> HttpResponse:
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    conversation = get_object_or_404(kb.conversations, uid=_uuid(uid))
    items = []
    for message in conversation.messages.prefetch_related("feedback"):
        urls = [s["url"] for s in message.sources]
        message.html = render_answer(message.content, urls) if message.role == "assistant" else ""
        items.append(message)
    return render(
        request,
        "assistant/conversation_review.html",
        {"kb": kb, "conversation": conversation, "items": items},
    )

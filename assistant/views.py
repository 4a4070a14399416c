"""Chat pages: thin views that check permission, call a service and present its events."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.views import redirect_to_login
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from ingest.access import kbs_readable
from ingest.models import KnowledgeBase
from ingest.selectors import documents_pickable

from .askers import Asker
from .feedback import feedback_record
from .http import (
    UploadedImage,
    chat_input_response,
    error_response,
    filters_from,
    sse_response,
    stored_image,
    uuid_or_none,
)
from .models import Conversation, Message
from .presenters import answer_shown, chat_mode, page_events
from .selectors import conversations_with_feedback
from .services import ChatInputError, answer_stream


def readable_kb(request: HttpRequest, slug: str) -> KnowledgeBase | None:
    return kbs_readable(user=request.user).filter(slug=slug).first()


def _transcript(conversation: Conversation, messages=None) -> list[Message]:
    """The messages of a conversation, answers rendered for the page."""
    items = list(messages if messages is not None else conversation.messages.all())
    for message in items:
        if message.role == Message.Role.ASSISTANT:
            message.__dict__.update(answer_shown(message))
    return items


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    kbs = list(kbs_readable(user=request.user))
    slug = request.GET.get("kb")
    kb = next((k for k in kbs if k.slug == slug), None) if slug else (kbs[0] if kbs else None)
    if slug and kb is None:  # not readable: sign in, or it isn't there for you
        if request.user.is_authenticated:
            raise Http404("No such knowledge base")
        return redirect_to_login(request.get_full_path())
    mine = Asker.for_session(request).conversations(kb=kb) if kb else Conversation.objects.none()
    conversation = None
    if kb is not None and request.GET.get("c"):
        uid = uuid_or_none(request.GET["c"])
        conversation = mine.filter(uid=uid).first() if uid else None
        if conversation is None:
            raise Http404("No such conversation")
    context = {
        "kbs": kbs,
        "kb": kb,
        "conversation": conversation,
        "chat_messages": _transcript(conversation) if conversation else [],
        "recent": mine[:20],
        "mode": chat_mode(kb=kb) if kb else {},
        "starters": kb.starters if kb else [],
        "pickable": documents_pickable(kb=kb) if kb else {"items": [], "total": 0},
    }
    return render(request, "assistant/chat.html", context)


@require_POST
def chat_stream(request: HttpRequest) -> HttpResponseBase:
    kb = readable_kb(request, request.POST.get("kb", ""))
    if kb is None:
        return error_response("Choose a knowledge base you have access to.", 404)
    try:
        events = answer_stream(
            kb=kb,
            asker=Asker.for_session(request, create=True),
            question=request.POST.get("question", ""),
            images=[UploadedImage(f) for f in request.FILES.getlist("images")],
            conversation_uid=request.POST.get("conversation") or None,
            resend_from=_int_or_none(request.POST.get("resend_from", "")),
            # "Ask only these documents": the picker sends their ids.
            filters=filters_from({"documents": request.POST.getlist("documents")}),
        )
    except ChatInputError as exc:
        return chat_input_response(exc)
    return sse_response(request, page_events(events))


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 12 else None


def _owned_message(request: HttpRequest, pk: int) -> Message | None:
    """One of the asker's own messages, in a knowledge base they can still read."""
    message = Message.objects.select_related("conversation__kb").filter(pk=pk).first()
    kb = readable_kb(request, message.conversation.kb.slug) if message else None
    mine = Asker.for_session(request).conversations(kb=kb) if kb else None
    if message is None or mine is None or not mine.filter(pk=message.conversation_id).exists():
        return None
    return message


@require_GET
def message_detail(request: HttpRequest, pk: int) -> JsonResponse:
    """An answer as saved (after Stop, the page shows exactly what was kept)."""
    message = _owned_message(request, pk)
    if message is None or message.role != Message.Role.ASSISTANT:
        return error_response("No such answer.", 404)
    shown = answer_shown(message)
    return JsonResponse({"status": message.status, "error": message.error, **shown})


@require_GET
def message_image(request: HttpRequest, pk: int, number: int) -> FileResponse:
    """A screenshot sent with one of the asker's questions (1 is the first)."""
    message = _owned_message(request, pk)
    if message is None or not 1 <= number <= len(message.images):
        raise Http404("No such screenshot")
    return stored_image(message.images[number - 1])


@require_POST
def message_feedback(request: HttpRequest, pk: int) -> JsonResponse:
    message = _owned_message(request, pk)
    if message is None:
        return error_response("No such answer.", 404)
    asker = Asker.for_session(request)
    rating = request.POST.get("rating", "")
    comment = request.POST.get("comment", "")
    try:
        record = feedback_record(message=message, asker=asker, rating=rating, comment=comment)
    except ChatInputError as exc:
        return chat_input_response(exc)
    return JsonResponse({"rating": record.rating, "comment": record.comment})


@staff_member_required
@require_GET
def conversations_review(request: HttpRequest, slug: str) -> HttpResponse:
    """Staff: every conversation of a knowledge base, with its feedback counts."""
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    only = request.GET.get("feedback", "")
    conversations = conversations_with_feedback(kb=kb, only=only)
    context = {"kb": kb, "conversations": conversations[:500], "only": only}
    return render(request, "assistant/conversations.html", context)


@staff_member_required
@require_GET
def conversation_review(request: HttpRequest, slug: str, uid: str) -> HttpResponse:
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    conversation = get_object_or_404(kb.conversations, uid=uuid_or_none(uid))
    items = _transcript(conversation, conversation.messages.prefetch_related("feedback"))
    return render(
        request,
        "assistant/conversation_review.html",
        {"kb": kb, "conversation": conversation, "items": items},
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 once this process has loaded its models (WARM_UP), 503 while it still is; for
    `make run`'s "ready" line and for load balancers."""
    from .tools import warmed

    ready = warmed.is_set() or not settings.WARM_UP
    response = JsonResponse({"ready": ready}, status=200 if ready else 503)
    # Not an error worth a traceback-level log line while `make run` polls for it.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response

"""The chat page's history (the sidebar's Recent list): list and search, rename, delete.

JSON endpoints for static/docent/history.js. Only the owner reaches a conversation here
(``Asker.conversations``); anyone else gets the same 404 as for one that isn't there.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from .askers import Asker
from .conversations import (
    conversation_delete,
    conversation_item,
    conversation_rename,
    conversations_search,
    history_stamp,
)
from .http import chat_input_response, error_response, uuid_or_none
from .models import Conversation
from .screenshots import ChatInputError
from .views import readable_kb

LIST_LIMIT = 50  # entries the JSON list sends (the page itself shows 20)


def _owned(request: HttpRequest, slug: str, uid: str) -> Conversation | None:
    kb, parsed = readable_kb(request, slug), uuid_or_none(uid)
    if kb is None or parsed is None:
        return None
    return Asker.for_session(request).conversations(kb=kb).filter(uid=parsed).first()


@require_GET
def conversation_list(request: HttpRequest, slug: str) -> JsonResponse:
    """The asker's conversations in a knowledge base, newest first; ?q= searches titles
    and message text. "now" labels an entry the script moves to the top itself."""
    kb = readable_kb(request, slug)
    if kb is None:
        raise Http404("No such knowledge base")
    mine = Asker.for_session(request).conversations(kb=kb)
    found = conversations_search(conversations=mine, query=request.GET.get("q", ""))
    now = timezone.now()
    items = [conversation_item(conversation=c, now=now) for c in found[:LIST_LIMIT]]
    return JsonResponse({"conversations": items, "now": history_stamp(when=now, now=now)})


@require_POST
def conversation_rename_view(request: HttpRequest, slug: str, uid: str) -> JsonResponse:
    conversation = _owned(request, slug, uid)
    if conversation is None:
        return error_response("No such conversation.", 404)
    try:
        conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
    except ChatInputError as exc:
        return chat_input_response(exc)
    return JsonResponse({"id": str(conversation.uid), "title": conversation.title})


@require_POST
def conversation_delete_view(request: HttpRequest, slug: str, uid: str) -> JsonResponse:
    conversation = _owned(request, slug, uid)
    if conversation is None:
        return error_response("No such conversation.", 404)
    conversation_delete(conversation=conversation)
    return JsonResponse({"deleted": uid})

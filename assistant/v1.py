"""/v1: each knowledge base as an OpenAI-compatible model, ``docent/<kb-slug>``.

Same API keys and scopes as /api/ (``Authorization: Bearer dk_...``): a key sees and
asks only its own knowledge bases. Answers go through answer_stream like every other
surface; assistant.llm.completions writes them in OpenAI's format.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.access import kbs_readable

from .askers import Asker
from .http import Base64Image, filters_from, json_object, sse_response
from .keys import api_key_from_header
from .llm.completions import (
    MODEL_PREFIX,
    CompletionError,
    chunk_frames,
    chunk_stream,
    completion_chunks,
    completion_object,
    completion_request,
    model_list,
)
from .models import ApiKey
from .packing import Turn
from .presenters import api_events, api_link
from .services import ChatInputError, answer_stream


def _error(exc: CompletionError) -> JsonResponse:
    response = JsonResponse(exc.body(), status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="docent"'
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _key(request: HttpRequest) -> ApiKey:
    key = api_key_from_header(authorization=request.headers.get("Authorization", ""))
    if key is None:
        raise CompletionError(
            "Send a Docent API key as 'Authorization: Bearer dk_...' (make one with "
            "manage.py apikey or in the admin).",
            status=401,
            code="invalid_api_key",
        )
    return key


@require_GET
def models(request: HttpRequest) -> JsonResponse:
    try:
        key = _key(request)
    except CompletionError as exc:
        return _error(exc)
    readable = kbs_readable(user=None, key=key).order_by("slug")
    return JsonResponse(model_list((kb.slug, kb.created_at.timestamp()) for kb in readable))


@csrf_exempt  # a bearer key, never a cookie, authenticates here: nothing to forge
@require_POST
def chat_completions(request: HttpRequest) -> HttpResponseBase:
    try:
        key = _key(request)
        ask = completion_request(json_object(request.body))
        kb = kbs_readable(user=None, key=key).filter(slug=ask.kb_slug).first()
        if kb is None:
            raise CompletionError(  # the name is not echoed: a 404 says nothing of others'
                "That model does not exist, or this key may not read it; GET /v1/models "
                "lists the knowledge bases it may.",
                status=404,
                code="model_not_found",
                param="model",
            )
        events = answer_stream(
            kb=kb,
            asker=Asker.for_key(key),
            question=ask.question,
            images=[Base64Image(url) for url in ask.images],
            history=[Turn(role, text) for role, text in ask.history],
            filters=filters_from(ask.filters),
        )
        link = api_link(base=request.build_absolute_uri("/")[:-1], key_id=key.pk)
        model = MODEL_PREFIX + kb.slug
        if ask.stream:
            chunks = completion_chunks(
                api_events(events, link), model=model, include_usage=ask.include_usage
            )
            return sse_response(request, chunk_stream(chunks), encode=chunk_frames)
        return JsonResponse(completion_object(api_events(events, link), model=model))
    except ChatInputError as exc:
        return _error(_input_error(exc))
    except CompletionError as exc:
        return _error(exc)


def _input_error(exc: ChatInputError) -> CompletionError:
    if exc.status == 429:
        return CompletionError(
            str(exc),
            status=429,
            kind="rate_limit_error",
            code="rate_limit_exceeded",
            retry_after=exc.retry_after,
        )
    return CompletionError(str(exc), status=exc.status)

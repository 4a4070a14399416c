"""What every HTTP surface shares: the SSE response, input decoding, error answers."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from .screenshots import ChatInputError
from .streaming import iterate_in_thread


def sse_frame(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_response(request: HttpRequest, events: Iterator) -> StreamingHttpResponse:
    """Events (anything with .kind and .data) as text/event-stream, always the same headers.

    Under ASGI the blocking event source runs in its own thread and the body is async;
    under WSGI the worker thread streams it directly.
    """

    def frames() -> Iterator[bytes]:
        yield b": stream open\n\n"  # flushes the headers at once, so a client shows progress
        for event in events:
            yield sse_frame(event.kind, event.data)

    body: AsyncIterator[bytes] | Iterator[bytes]
    body = iterate_in_thread(frames) if isinstance(request, ASGIRequest) else frames()
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: don't hold the stream back
    return response


def error_response(message: str, status: int, *, retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def chat_input_response(exc: ChatInputError) -> JsonResponse:
    return error_response(str(exc), exc.status)


def decode_data_url(value: object) -> bytes:
    """Bytes of a base64 image, given bare or as a ``data:`` URL; ChatInputError otherwise."""
    if not isinstance(value, str):
        raise ChatInputError("Images must be sent as base64 data URLs.")
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChatInputError("Images must be sent as base64 data URLs.") from exc


def decode_images(value: object) -> list[bytes]:
    """A JSON list of base64 images (bare or data: URLs) as bytes."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ChatInputError("images must be a list of base64 data URLs.")
    return [decode_data_url(item) for item in value]


def uuid_or_none(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None

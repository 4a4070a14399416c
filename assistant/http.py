"""What every HTTP surface shares: the SSE response, input decoding, error answers."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, Http404, HttpRequest, JsonResponse, StreamingHttpResponse

from ingest.filters import DocumentFilter, FilterError, document_filter_parse

from .screenshots import ChatInputError
from .streaming import batches_in_thread


def sse_frame(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


STREAM_OPEN = b": stream open\n\n"  # flushes the headers at once, so a client shows progress
_JOINABLE = ("delta", "reasoning")  # pieces of one text: consecutive ones read as one


def sse_frames(events: Sequence[Any]) -> bytes:
    """Events that were ready together as one write, consecutive text pieces as one event.

    A client sees the same text either way; a loaded server sends fewer, larger events.
    """
    out: list[bytes] = []
    kind = ""
    texts: list[str] = []
    for event in events:
        if event.kind in _JOINABLE and event.data.keys() == {"text"}:
            if event.kind != kind and texts:
                out.append(sse_frame(kind, {"text": "".join(texts)}))
                texts = []
            kind = event.kind
            texts.append(event.data["text"])
            continue
        if texts:
            out.append(sse_frame(kind, {"text": "".join(texts)}))
            kind, texts = "", []
        out.append(sse_frame(event.kind, event.data))
    if texts:
        out.append(sse_frame(kind, {"text": "".join(texts)}))
    return b"".join(out)


Encode = Callable[[Sequence[Any]], bytes]


async def _sse_async(events: Iterator, encode: Encode) -> AsyncIterator[bytes]:
    yield STREAM_OPEN
    async for batch in batches_in_thread(lambda: events):
        yield encode(batch)


def _sse_sync(events: Iterator, encode: Encode) -> Iterator[bytes]:
    yield STREAM_OPEN
    for event in events:
        yield encode([event])


def sse_response(
    request: HttpRequest, events: Iterator, *, encode: Encode = sse_frames
) -> StreamingHttpResponse:
    """Events as text/event-stream, always the same headers. `encode` writes the events that
    were ready together as bytes: by default Docent's named events (anything with .kind
    and .data); /v1 passes OpenAI's unnamed ``data:`` chunks.

    Under ASGI the blocking event source runs in its own thread and the body is async,
    what was ready together sent as one write; under WSGI the worker thread streams it.
    """
    body: AsyncIterator[bytes] | Iterator[bytes]
    is_asgi = isinstance(request, ASGIRequest)
    body = _sse_async(events, encode) if is_asgi else _sse_sync(events, encode)
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
    return error_response(str(exc), exc.status, retry_after=exc.retry_after)


@dataclass(frozen=True)
class Base64Image:
    """A base64 image from a JSON body (bare or a ``data:`` URL), decoded only when read."""

    text: str

    @property
    def payload(self) -> str:
        return self.text.partition(",")[2] if self.text.startswith("data:") else self.text

    @property
    def size(self) -> int:
        """Bytes it decodes to, from its length alone."""
        payload = self.payload.rstrip("=")
        return len(payload) * 3 // 4

    def read(self) -> bytes:
        try:
            return base64.b64decode(self.payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ChatInputError("Images must be sent as base64 data URLs.") from exc


@dataclass(frozen=True)
class UploadedImage:
    """A screenshot sent as a multipart file (already spooled to disk by Django)."""

    file: UploadedFile

    @property
    def size(self) -> int:
        return self.file.size or 0

    def read(self) -> bytes:
        return self.file.read()


def decode_images(value: object) -> list[Base64Image]:
    """A JSON list of base64 images (bare or data: URLs), not decoded yet."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ChatInputError("images must be a list of base64 data URLs.")
    return [Base64Image(item) for item in value]


def json_object(body: bytes) -> dict:
    """A request body that must be a JSON object; ChatInputError(400) otherwise.

    Nesting deep enough to exhaust the parser's recursion is refused like any other
    malformed body, not answered with a server error.
    """
    try:
        parsed = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise ChatInputError("Malformed request: send a JSON object.", status=400)
    return parsed


def stored_image(name: str) -> FileResponse:
    """A screenshot kept with a question (always saved as PNG), shown inline and inert."""
    from ingest.views import stored_file

    try:
        response = stored_file(name, "image/png")
    except OSError as exc:
        raise Http404("That screenshot is no longer stored.") from exc
    response["Cache-Control"] = "private, max-age=3600"
    return response


def uuid_or_none(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def filters_from(value: object) -> DocumentFilter:
    """A question's document filters from a request's JSON (ingest.filters); ChatInputError
    (422, in words) when malformed."""
    try:
        return document_filter_parse(value)
    except FilterError as exc:
        raise ChatInputError(str(exc)) from exc

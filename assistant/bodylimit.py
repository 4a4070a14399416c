"""Refuse an oversized request body before reading it (ASGI, in front of Django).

Django's ASGI handler reads the whole body into a temporary file before any view or
middleware runs, so a limit checked by a view comes after the work. This wrapper answers
413 from the declared Content-Length at once, and stops a body without one (chunked) as
soon as it passes the limit. Uploads may be MAX_UPLOAD_BYTES; every other request
MAX_REQUEST_BYTES (a question with its screenshots, as base64 or multipart).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from ingest.pipeline.types import human_bytes, size_over_limit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

_UPLOADS = re.compile(r"^/(api/)?kbs?/[^/]+/documents/?$")
_FORM_SLACK = 1024 * 1024  # multipart boundaries and form fields around the files


def body_limit(path: str) -> int:
    """The most bytes a request to `path` may carry."""
    if _UPLOADS.match(path):
        return settings.MAX_UPLOAD_BYTES + _FORM_SLACK
    return settings.MAX_REQUEST_BYTES


def _refusal(path: str, size: int | None) -> str:
    """Why a body of `size` bytes (None: unknown, only that it is over) is refused, in words."""
    upload = bool(_UPLOADS.match(path))
    what = "This file" if upload else "This request"
    limit = settings.MAX_UPLOAD_BYTES if upload else settings.MAX_REQUEST_BYTES
    if size is None:
        return f"{what} is larger than the limit of {human_bytes(limit)}."
    return size_over_limit(size, limit, what=what)


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            size = int(declared) if declared.isdigit() else None
            await _too_large(send, _refusal(scope["path"], size))
            return
        received = 0
        refused = False

        async def bounded() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    await _too_large(send, _refusal(scope["path"], None))
                    return {"type": "http.disconnect"}  # Django stops reading, sends nothing
            return message

        await self.app(scope, bounded, send)


async def _too_large(send: Send, message: str) -> None:
    # "detail" as every API error has it; "error" as the chat page and widget read it.
    body = json.dumps({"detail": message, "error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})

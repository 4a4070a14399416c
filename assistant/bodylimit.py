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
            await _too_large(send, limit)
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
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}  # Django stops reading, sends nothing
            return message

        await self.app(scope, bounded, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": f"The request is larger than the limit of {limit:,} bytes."}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""An oversized upload is refused from its headers, in words, before its body is read."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from assistant.bodylimit import BodyLimit

MB = 1024 * 1024


def call(path: str, headers: list[tuple[bytes, bytes]], bodies: list[bytes]) -> dict:
    """Run one request through BodyLimit; what the app saw and what was sent back."""
    seen = {"app_called": False, "reads": 0, "sent": []}

    async def app(scope, receive, send) -> None:
        seen["app_called"] = True
        while (await receive())["type"] == "http.request":
            pass

    async def receive():
        seen["reads"] += 1
        body = bodies.pop(0) if bodies else b""
        return {"type": "http.request", "body": body, "more_body": bool(bodies)}

    async def send(message) -> None:
        seen["sent"].append(message)

    scope = {"type": "http", "path": path, "headers": headers}
    # A thread of its own: after the browser tests, Playwright's loop lives in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, BodyLimit(app)(scope, receive, send)).result(timeout=60)
    return seen


def test_a_110_mb_upload_is_refused_from_its_content_length(settings):
    settings.MAX_UPLOAD_BYTES = 100 * MB
    seen = call("/api/kbs/manuals/documents", [(b"content-length", b"%d" % (110 * MB))], [])
    assert not seen["app_called"] and seen["reads"] == 0  # not one byte of the body was read
    start, body = seen["sent"]
    assert start["status"] == 413
    assert json.loads(body["body"])["detail"] == "This file is 110 MB; the limit is 100 MB."


def test_a_chunked_upload_is_cut_off_once_it_passes_the_limit(settings):
    settings.MAX_UPLOAD_BYTES = 2 * MB
    seen = call("/api/kbs/manuals/documents", [], [b"x" * MB] * 6)
    assert seen["reads"] <= 4  # stopped a little past the limit, not at the end
    start, body = seen["sent"]
    assert start["status"] == 413
    assert json.loads(body["body"])["detail"] == "This file is larger than the limit of 2 MB."

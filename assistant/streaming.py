"""Serve a blocking event iterator as an async SSE body without holding the event loop.

The answer path is synchronous (ORM, Chroma client, openai SDK). Each stream runs in
its own thread and hands events to the loop; when the client disconnects or presses
stop, the thread closes the iterator, which stops the model's stream upstream too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from django.db import connections

from .rendering import render_answer
from .services import ChatEvent

HTML_EVERY_SECONDS = 0.15  # re-render the Markdown at most this often while streaming


async def iterate_in_thread(make: Callable[[], Iterator[bytes]]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        iterator = None
        try:
            iterator = make()
            for item in iterator:
                loop.call_soon_threadsafe(queue.put_nowait, ("item", item))
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the loop and re-raised there
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                iterator.close()  # GeneratorExit inside the answer: saved as stopped
            connections.close_all()
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    threading.Thread(target=run, daemon=True, name="sse-stream").start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


def sse(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_events(events: Iterator[ChatEvent]) -> Iterator[bytes]:
    """ChatEvents as SSE frames, adding sanitised HTML of the answer as it grows."""
    text: list[str] = []
    urls: list[str] = []
    last_render = 0.0
    dirty = False
    yield b": stream open\n\n"  # flushes headers at once so the page can show progress
    for event in events:
        if event.kind == "sources":
            urls = [s["url"] for s in event.data["sources"]]
        if event.kind == "delta":
            text.append(event.data["text"])
            dirty = True
        if event.kind in {"done", "error"} and dirty:
            yield sse("html", {"html": render_answer("".join(text), urls)})
            dirty = False
        yield sse(event.kind, event.data)
        now = time.monotonic()
        if dirty and now - last_render >= HTML_EVERY_SECONDS:
            yield sse("html", {"html": render_answer("".join(text), urls)})
            last_render, dirty = now, False

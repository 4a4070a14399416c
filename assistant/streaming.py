"""Serve a blocking event iterator as an async SSE body without holding the event loop.

The answer path is synchronous (ORM, Chroma client, openai SDK). Each stream runs in
its own thread and hands events to the loop; when the client disconnects or presses
stop, the thread closes the iterator, which stops the model's stream upstream too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from django.db import connections


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

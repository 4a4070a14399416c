"""Serve a blocking event iterator as an async body without holding the event loop.

The answer path is synchronous (ORM, Chroma client, openai SDK). Each stream runs in
its own thread and hands what it makes to the loop; when the client disconnects or
presses stop, the thread closes the iterator, which stops the model's stream upstream too.

The thread wakes the loop once per batch, not once per item: whatever it made while the
loop was busy goes out as one batch (one write), so a loaded server does less work per
token instead of more.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


async def batches_in_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[list[T]]:
    """The items of `make()`, produced in a thread, as the lists that were ready together."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    lock = threading.Lock()
    pending: list[tuple[str, object]] = []
    scheduled = False
    stop = threading.Event()

    def put(kind: str, value: object) -> None:
        nonlocal scheduled
        with lock:
            pending.append((kind, value))
            if scheduled:
                return  # the loop has a wake-up coming and will take this one too
            scheduled = True
        try:
            loop.call_soon_threadsafe(ready.set)
        except RuntimeError:  # the loop has closed (server shutdown): nobody is reading
            stop.set()

    def run() -> None:
        iterator = None
        try:
            iterator = make()
            for item in iterator:
                put("item", item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the loop and re-raised there
            put("error", exc)
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                iterator.close()  # GeneratorExit inside the answer: saved as stopped
            connections.close_all()
            put("end", None)

    threading.Thread(target=run, daemon=True, name="sse-stream").start()
    try:
        while True:
            await ready.wait()
            ready.clear()
            with lock:
                taken, pending[:] = pending[:], []
                scheduled = False
            batch: list[T] = []
            for kind, value in taken:
                if kind == "item":
                    batch.append(value)  # type: ignore[arg-type]
                    continue
                if batch:
                    yield batch
                if kind == "error":
                    raise value  # type: ignore[misc]
                return
            if batch:
                yield batch
    finally:
        stop.set()


async def iterate_in_thread(make: Callable[[], Iterator[bytes]]) -> AsyncIterator[bytes]:
    """The bytes of `make()`, produced in a thread; what was ready together is one write."""
    async for batch in batches_in_thread(make):
        yield b"".join(batch)

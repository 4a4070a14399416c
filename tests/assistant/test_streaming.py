"""The thread-to-event-loop relay under every streamed answer, and its SSE batching."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.events import ChatEvent
from assistant.http import sse_frames
from assistant.streaming import batches_in_thread


def parse(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_text_pieces_that_were_ready_together_go_out_as_one_event_in_order():
    batch = [
        ChatEvent("status", {"stage": "generating"}),
        ChatEvent("reasoning", {"text": "Think "}),
        ChatEvent("reasoning", {"text": "first."}),
        ChatEvent("delta", {"text": "Use "}),
        ChatEvent("delta", {"text": "**Settings** "}),
        ChatEvent("delta", {"text": "[1]."}),
        ChatEvent("citations", {"cited": []}),
        ChatEvent("delta", {"text": "late"}),
    ]
    assert parse(sse_frames(batch)) == [
        ("status", {"stage": "generating"}),
        ("reasoning", {"text": "Think first."}),
        ("delta", {"text": "Use **Settings** [1]."}),
        ("citations", {"cited": []}),
        ("delta", {"text": "late"}),
    ]


def run_loop(main):
    """asyncio.run in a thread of its own: after the browser tests, this thread holds
    Playwright's running loop, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result(timeout=60)


def collect(make, *, stall: float = 0.0, take: int | None = None) -> list[list]:
    async def main() -> list[list]:
        batches: list[list] = []
        stream = batches_in_thread(make)
        try:
            async for batch in stream:
                batches.append(batch)
                time.sleep(stall)  # a busy loop: the thread keeps producing meanwhile
                if take is not None and len(batches) >= take:
                    break
        finally:
            await stream.aclose()
        return batches

    return run_loop(main())


def test_a_busy_loop_takes_what_piled_up_as_one_batch_and_loses_nothing():
    def make():
        for n in range(200):
            time.sleep(0.001)
            yield n

    batches = collect(make, stall=0.05)
    assert [n for batch in batches for n in batch] == list(range(200))
    assert len(batches) < 20  # about one wake-up per 50 ms of loop time, not one per item


def test_a_failure_in_the_thread_reaches_the_reader_after_what_came_before():
    def make():
        yield "first"
        raise ValueError("the store went away")

    got: list = []

    async def main() -> None:
        async for batch in batches_in_thread(make):
            got.extend(batch)

    with pytest.raises(ValueError, match="the store went away"):
        run_loop(main())
    assert got == ["first"]


def test_a_reader_that_leaves_closes_the_answer_in_its_thread():
    closed = threading.Event()

    def make():
        try:
            n = 0
            while True:
                n += 1
                time.sleep(0.005)
                yield n
        finally:
            closed.set()  # where the answer is saved as stopped

    collect(make, take=1)
    assert closed.wait(5), "the producing thread never closed its iterator"

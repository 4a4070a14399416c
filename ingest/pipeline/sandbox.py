"""Run extraction in a child process with a time limit and a memory cap.

pypdf, Pillow and OCR are fed untrusted bytes. A looping PDF can spin forever and a
bomb can eat all memory; neither can be interrupted safely inside the worker. A child
process can be killed, so the worker survives and only that document fails.

Pages stream back as they are read, so the worker embeds early pages while the child
is still reading later ones: on a long PDF the two stages overlap instead of adding up.
"""

from __future__ import annotations

import multiprocessing
import queue
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from .types import (
    ExtractionEnd,
    ExtractionInterrupted,
    ImageData,
    IngestError,
    Limits,
    PageText,
    Progress,
    human_bytes,
    human_seconds,
)

_context = None


@dataclass(frozen=True)
class ExtractedPage:
    page: PageText
    images: tuple[ImageData, ...]  # images first seen on this page, in document order


ExtractionEvent = Progress | ExtractedPage | ExtractionEnd  # the end marker comes last


def _get_context():
    # forkserver children start from a small, clean process (no torch threads, no
    # open database or Chroma connections) and are still cheap to fork per document.
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ingest.pipeline.extract"])
        _context = ctx
    return _context


def sandbox_warm_up() -> None:
    """Start the fork server now (it imports the parsers, about a second), not on the first
    document: a worker calls this before it takes work, so a small file is read at once."""
    from multiprocessing import forkserver

    _get_context()
    forkserver.ensure_running()


def iter_extraction(
    path: Path, *, kind: str, filename: str, limits: Limits
) -> Iterator[ExtractionEvent]:
    """Events from a sandboxed extraction; raises IngestError on timeout, crash or bad input."""
    ctx = _get_context()
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main, args=(str(path), kind, filename, limits, sender), daemon=True
    )
    child.start()
    sender.close()
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    # A thread drains the pipe so the child never blocks while the caller is busy embedding.
    reader = threading.Thread(
        target=_read,
        args=(receiver, child, limits, events, stop),
        daemon=True,
        name="extract-reader",
    )
    reader.start()
    try:
        while True:
            tag, payload = events.get()
            if tag == "error":
                raise IngestError(payload)
            if tag == "interrupted":
                raise ExtractionInterrupted(payload)
            yield payload
            if tag == "done":
                return
    finally:
        stop.set()
        if child.is_alive():
            child.kill()
        reader.join(10)
        child.join(5)
        receiver.close()


def _read(
    receiver: Connection, child, limits: Limits, events: queue.Queue, stop: threading.Event
) -> None:
    deadline = time.monotonic() + limits.timeout_seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            child.kill()
            events.put(
                (
                    "interrupted",
                    f"Reading this document took longer than the "
                    f"{human_seconds(limits.timeout_seconds)} limit; it may be damaged or "
                    "very large.",
                )
            )
            return
        try:
            if not receiver.poll(min(remaining, 0.2)):
                continue
            tag, payload = receiver.recv()
        except (EOFError, OSError):
            child.join(5)
            events.put(("interrupted", _crash_message(child.exitcode, limits)))
            return
        events.put((tag, payload))
        if tag in {"done", "error", "interrupted"}:
            return


def _crash_message(exitcode: int | None, limits: Limits) -> str:
    if exitcode is not None and exitcode < 0:
        return (
            f"Reading this document was stopped (signal {-exitcode}); it probably needed more "
            f"than the {_memory(limits)} of memory allowed."
        )
    return f"Reading this document crashed (exit code {exitcode}); it is probably damaged."


def _memory(limits: Limits) -> str:
    return human_bytes(limits.memory_limit_mb * 1024 * 1024)


def _child_main(path: str, kind: str, filename: str, limits: Limits, sender: Connection) -> None:
    cap = limits.memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damage is reported as notes instead
    from .extract import extract

    def report(progress: Progress) -> None:
        sender.send(("progress", progress))

    def page(text: PageText, images: tuple[ImageData, ...]) -> None:
        sender.send(("page", ExtractedPage(text, images)))

    try:
        data = Path(path).read_bytes()
        result = extract(
            data, kind=kind, filename=filename, limits=limits, on_progress=report, on_page=page
        )
        message: tuple[str, ExtractionEnd | str] = (
            "done",
            ExtractionEnd(result.kind, result.page_count, result.title, result.warnings),
        )
    except IngestError as exc:
        message = ("error", str(exc))
    except MemoryError:
        message = (
            "interrupted",
            f"Reading this document needed more than the {_memory(limits)} of memory "
            "allowed; it may be a decompression bomb.",
        )
    except RecursionError:
        message = ("error", "The document's structure is nested too deeply or loops.")
    except Exception as exc:  # the bytes are hostile; any library error is the document's
        message = ("error", f"The document could not be read ({type(exc).__name__}: {exc}).")
    try:
        sender.send(message)
    except MemoryError:
        sender.send(
            (
                "interrupted",
                "The text of this document is too large to handle within the memory allowed.",
            )
        )
    sender.close()

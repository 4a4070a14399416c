"""Run extraction in a child process with a time limit and a memory cap.

pypdf, Pillow and OCR are fed untrusted bytes. A looping PDF can spin forever and a
bomb can eat all memory; neither can be interrupted safely inside the worker. A child
process can be killed, so the worker survives and only that document fails.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from .types import Extraction, IngestError, Limits, Progress

_context = None


def _get_context():
    # forkserver children start from a small, clean process (no torch threads, no
    # open database or Chroma connections) and are still cheap to fork per document.
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ingest.pipeline.extract"])
        _context = ctx
    return _context


def run_extraction(
    path: Path,
    *,
    kind: str,
    filename: str,
    limits: Limits,
    on_progress: Callable[[Progress], None],
) -> Extraction:
    """Extract `path` in a sandboxed child; raise IngestError on timeout, crash or bad input."""
    ctx = _get_context()
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main, args=(str(path), kind, filename, limits, sender), daemon=True
    )
    child.start()
    sender.close()
    deadline = time.monotonic() + limits.timeout_seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IngestError(
                    f"Extraction took longer than the {limits.timeout_seconds:g} s limit "
                    "(INGEST_TIMEOUT_SECONDS); the document may be malformed or very large."
                )
            if not receiver.poll(min(remaining, 0.5)):
                continue
            try:
                tag, payload = receiver.recv()
            except EOFError:
                child.join(5)
                raise IngestError(_crash_message(child.exitcode, limits)) from None
            if tag == "progress":
                on_progress(payload)
            elif tag == "result":
                return payload
            else:
                raise IngestError(payload)
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()


def _crash_message(exitcode: int | None, limits: Limits) -> str:
    if exitcode is not None and exitcode < 0:
        return (
            f"Extraction was stopped by signal {-exitcode}; it probably exceeded the "
            f"{limits.memory_limit_mb} MB memory limit (INGEST_MEMORY_LIMIT_MB)."
        )
    return f"Extraction crashed (exit code {exitcode}); the document is probably malformed."


def _child_main(path: str, kind: str, filename: str, limits: Limits, sender: Connection) -> None:
    cap = limits.memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damage is reported as notes instead
    from .extract import extract

    def report(progress: Progress) -> None:
        sender.send(("progress", progress))

    try:
        data = Path(path).read_bytes()
        result = extract(data, kind=kind, filename=filename, limits=limits, on_progress=report)
        message = ("result", result)
    except IngestError as exc:
        message = ("error", str(exc))
    except MemoryError:
        message = (
            "error",
            f"Extraction ran out of memory (limit {limits.memory_limit_mb} MB, "
            "INGEST_MEMORY_LIMIT_MB); the document may be a decompression bomb.",
        )
    except RecursionError:
        message = ("error", "The document's structure is nested too deeply or loops.")
    except Exception as exc:  # the bytes are hostile; any library error is the document's
        message = ("error", f"The document could not be read ({type(exc).__name__}: {exc}).")
    try:
        sender.send(message)
    except MemoryError:
        sender.send(("error", "The extracted content is too large to hand back within limits."))
    sender.close()

"""What went wrong while answering, said for people: the data of an `error` event.

Whatever fails after an answer's first event ends as one of these (and the reply is
saved with status "error" and the message); details go to the server log only.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from ingest.store import StoreUnavailable

from .llm import LLMError
from .packing import PackingError

logger = logging.getLogger("docent.chat")


def failure_described(exc: Exception) -> dict:
    """The error event for a failure after the first event: what happened, for people."""
    if isinstance(exc, LLMError):
        data: dict = {"message": str(exc), "code": exc.code}
        if exc.retry_after is not None:
            data["retry_after"] = exc.retry_after
        return data
    if isinstance(exc, PackingError):
        return {"message": str(exc), "code": "packing"}
    if isinstance(exc, StoreUnavailable):
        logger.warning("Vector store unavailable mid-question: %s", exc)
        return {
            "message": "The search index is not reachable right now, so Docent could not look "
            "up sources. Please try again in a moment.",
            "code": "store_unavailable",
        }
    if isinstance(exc, DatabaseError):
        logger.exception("Database error while answering")
        return {
            "message": "The database was busy or unavailable while answering. Please try again.",
            "code": "database",
        }
    logger.exception("Unexpected failure while answering")
    return {
        "message": f"Docent failed while answering ({type(exc).__name__}); the details are "
        "in the server log.",
        "code": "internal",
    }

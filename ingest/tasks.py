"""Where tasks queued before the queue moved to ingest.services.queue still find their function."""

from ingest.services.queue import ingest_document

__all__ = ["ingest_document"]

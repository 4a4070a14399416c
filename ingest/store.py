"""The only module that talks to Chroma.

One collection per knowledge base: filtering one big collection by metadata was
measured 20x slower (40 ms against 2 ms over 50k vectors). Vectors are always passed
in; Chroma is never asked to embed, since its default embedder would download a model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import httpx
import numpy as np

logger = logging.getLogger("docent.store")
T = TypeVar("T")
_PAGE = 5000


class StoreUnavailable(RuntimeError):
    """Chroma could not be reached; the message says where it was looked for."""


@dataclass(frozen=True)
class VectorHit:
    vector_id: str
    distance: float  # cosine distance, 0 = same direction


class VectorStore(Protocol):
    """What ingest, retrieval and recovery ask of the vector index (cosine distances)."""

    def heartbeat(self) -> bool: ...

    def upsert(
        self, *, collection: str, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]
    ) -> None: ...

    def query(
        self,
        *,
        collection: str,
        vector: np.ndarray,
        limit: int,
        documents: Sequence[int] | None = None,
    ) -> list[VectorHit]: ...

    def delete_document(
        self, *, collection: str, document_id: int, keep_generation: int = 0
    ) -> None: ...

    def delete_ids(self, *, collection: str, ids: Sequence[str]) -> None: ...

    def ids(self, *, collection: str) -> set[str]: ...

    def present(self, *, collection: str, ids: Sequence[str]) -> set[str]: ...

    def count(self, *, collection: str) -> int: ...

    def vectors(self, *, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def collection_names(self) -> set[str]: ...

    def drop(self, *, collection: str) -> None: ...


class ChromaStore:
    """VectorStore on a Chroma server, reconnecting when it restarts."""

    def __init__(
        self,
        *,
        url: str = "",
        data_dir: Path | None = None,
        token: str = "",
        timeout_seconds: float = 60.0,
    ) -> None:
        """Use the server at `url`, or else the local server kept for `data_dir`.

        `token` is sent as ``X-Chroma-Token`` on every request, for a server behind a
        proxy that checks it (Chroma 1.x itself does not). `timeout_seconds` bounds each
        request (connect, each read and write).
        """
        if not url and data_dir is None:
            raise ValueError("VectorStore needs a CHROMA_URL or a DATA_DIR")
        self._fixed_url = url
        self._data_dir = data_dir
        self._headers = {"X-Chroma-Token": token} if token else None
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._client: Any = None
        self._collections: dict[str, Any] = {}

    # -- connection ---------------------------------------------------------------------
    def _connect(self):
        import chromadb
        from chromadb.config import Settings

        if self._fixed_url:
            url = self._fixed_url
        else:
            from .chromaserver import ensure_local_server

            assert self._data_dir is not None  # checked in __init__
            url = ensure_local_server(self._data_dir)
        if self._fixed_url:
            # The client's constructor already asks the server (with no time limit): a
            # server that accepts but never answers fails here, within the timeout. The
            # local server was just checked the same way by ensure_local_server.
            httpx.get(
                f"{url.rstrip('/')}/api/v2/heartbeat",
                headers=self._headers,
                timeout=self._timeout_seconds,
            )
        parts = urlparse(url)
        try:
            client = chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                headers=self._headers,
                settings=Settings(anonymized_telemetry=False),
            )
        except ValueError as exc:  # how chromadb reports a refusal (e.g. a proxy's 401)
            if "could not connect" in str(exc).lower():
                raise
            hint = " (check CHROMA_TOKEN)" if self._fixed_url else ""
            raise StoreUnavailable(
                f"Chroma at {url} refused the connection{hint}: {exc or 'no reason given'}"
            ) from exc
        # chromadb's HTTP client waits forever (httpx timeout=None) and has no setting for
        # it: a stalled server would hold a question or an ingest with no end.
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(self._timeout_seconds)
        return client

    def _get_client(self):
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _call(self, fn: Callable[[Any], T], *, retries: int = 3) -> T:
        """Run fn(client), reconnecting if the server went away (a restart changes the port)."""
        for attempt in range(retries + 1):
            try:
                return fn(self._get_client())
            except Exception as exc:
                if not _is_connection_error(exc) or attempt == retries:
                    if _is_connection_error(exc):
                        where = self._fixed_url or f"the local server for {self._data_dir}"
                        raise StoreUnavailable(f"Chroma is unreachable at {where}: {exc}") from exc
                    raise
                logger.warning("Chroma connection failed (%s); reconnecting", exc)
                with self._lock:
                    self._client = None
                    self._collections.clear()
                time.sleep(min(0.5 * 2**attempt, 4))
        raise AssertionError("unreachable")

    def _collection(self, client, collection: str):
        if collection not in self._collections:
            self._collections[collection] = client.get_or_create_collection(
                collection,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[collection]

    # -- operations ---------------------------------------------------------------------
    def heartbeat(self) -> bool:
        return bool(self._call(lambda c: c.heartbeat()))

    def upsert(
        self,
        *,
        collection: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict],
    ) -> None:
        """Write vectors; the same ids written twice leave one copy (ids are deterministic)."""
        for start in range(0, len(ids), _PAGE):
            page = slice(start, start + _PAGE)

            def write(client: Any, page: slice = page) -> None:
                self._collection(client, collection).upsert(
                    ids=list(ids[page]), embeddings=vectors[page], metadatas=list(metadatas[page])
                )

            self._call(write)

    def query(
        self,
        *,
        collection: str,
        vector: np.ndarray,
        limit: int,
        documents: Sequence[int] | None = None,
    ) -> list[VectorHit]:
        """Nearest vectors to one query vector, closest first; only those of `documents`
        (ids) when given."""
        where = {"doc": {"$in": list(documents)}} if documents is not None else None

        def run(client) -> list[VectorHit]:
            result = self._collection(client, collection).query(
                query_embeddings=[vector], n_results=limit, where=where, include=["distances"]
            )
            return [
                VectorHit(vid, float(dist))
                for vid, dist in zip(result["ids"][0], result["distances"][0], strict=True)
            ]

        return self._call(run)

    def delete_document(
        self, *, collection: str, document_id: int, keep_generation: int = 0
    ) -> None:
        """Remove a document's vectors, except those of `keep_generation` if it is not 0."""
        where: dict = {"doc": document_id}
        if keep_generation:
            where = {"$and": [{"doc": document_id}, {"gen": {"$ne": keep_generation}}]}
        self._call(lambda c: self._collection(c, collection).delete(where=where))

    def delete_ids(self, *, collection: str, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _PAGE):
            batch = list(ids[start : start + _PAGE])

            def delete(client: Any, batch: list[str] = batch) -> None:
                self._collection(client, collection).delete(ids=batch)

            self._call(delete)

    def ids(self, *, collection: str) -> set[str]:
        """Every vector id in a knowledge base's collection."""
        found: set[str] = set()
        offset = 0
        while True:

            def read(client: Any, offset: int = offset) -> list[str]:
                return self._collection(client, collection).get(
                    include=[], limit=_PAGE, offset=offset
                )["ids"]

            page = self._call(read)
            found.update(page)
            if len(page) < _PAGE:
                return found
            offset += _PAGE

    def present(self, *, collection: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` the collection holds. Asked once, without retries: it serves a
        page a person is waiting for, which says so when Chroma is down."""
        found: set[str] = set()
        for start in range(0, len(ids), _PAGE):
            batch = list(ids[start : start + _PAGE])

            def read(client: Any, batch: list[str] = batch) -> list[str]:
                return self._collection(client, collection).get(ids=batch, include=[])["ids"]

            found.update(self._call(read, retries=0))
        return found

    def count(self, *, collection: str) -> int:
        return int(self._call(lambda c: self._collection(c, collection).count()))

    def vectors(self, *, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of `ids` (those the collection holds), by id."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), _PAGE):
            batch = list(ids[start : start + _PAGE])

            def read(client: Any, batch: list[str] = batch) -> dict[str, np.ndarray]:
                got = self._collection(client, collection).get(ids=batch, include=["embeddings"])
                return {
                    vid: np.asarray(vector, dtype=np.float32)
                    for vid, vector in zip(got["ids"], got["embeddings"], strict=True)
                }

            found.update(self._call(read))
        return found

    def collection_names(self) -> set[str]:
        return {c.name for c in self._call(lambda c: c.list_collections())}

    def drop(self, *, collection: str) -> None:
        def run(client) -> None:
            self._collections.pop(collection, None)
            try:
                client.delete_collection(collection)
            except Exception as exc:
                if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                    raise

        self._call(run)


def _is_connection_error(exc: Exception) -> bool:
    import httpx

    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    return "connect" in text and ("refused" in text or "error" in text)


_store: VectorStore | None = None
_store_lock = threading.Lock()


def get_store() -> VectorStore:
    """The process-wide store, configured from settings on first use."""
    global _store
    with _store_lock:
        if _store is None:
            from django.conf import settings

            _store = ChromaStore(
                url=settings.CHROMA_URL,
                data_dir=settings.DATA_DIR,
                token=settings.CHROMA_TOKEN,
                timeout_seconds=settings.CHROMA_TIMEOUT_SECONDS,
            )
        return _store

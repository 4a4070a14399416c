"""Small deterministic stand-ins for the narrow protocols, for fast unit tests.

`HashEmbedder` (ingest.pipeline.embed.Embedder), `MemoryStore` (ingest.store.VectorStore)
and `ScriptedLLM` (assistant.llm.LLMClient) do just what the protocols promise, with no
model, server or network. Integration tests keep using the real ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from assistant.llm import Finished, LLMConfig, LLMEvent, Sampling, TextDelta, Usage
from ingest.store import VectorHit
from ministral.prompt import ChatMessage
from ministral.registry import ModelInfo, model_lookup

WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag-of-words vectors: texts sharing words point the same way (deterministic)."""

    name = "hash-embedder"
    max_tokens = 254
    dimension = 256

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(WORD.findall(text)) for text in texts]

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                index = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                vectors[row, index] += 1.0
            norm = np.linalg.norm(vectors[row])
            if norm:
                vectors[row] /= norm
        return vectors


class MemoryStore:
    """Collections of vectors in a dict; cosine search by brute force."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]] = {}

    def heartbeat(self) -> bool:
        return True

    def upsert(
        self, *, collection: str, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]
    ) -> None:
        rows = self.collections.setdefault(collection, {})
        for vector_id, vector, metadata in zip(ids, vectors, metadatas, strict=True):
            rows[vector_id] = (np.asarray(vector, dtype=np.float32), dict(metadata))

    def query(
        self,
        *,
        collection: str,
        vector: np.ndarray,
        limit: int,
        documents: Sequence[int] | None = None,
    ) -> list[VectorHit]:
        rows = self.collections.get(collection, {})
        scored = [
            (1.0 - float(np.dot(v, vector)), vid)
            for vid, (v, meta) in rows.items()
            if documents is None or meta["doc"] in documents
        ]
        return [VectorHit(vid, distance) for distance, vid in sorted(scored)[:limit]]

    def delete_document(
        self, *, collection: str, document_id: int, keep_generation: int = 0
    ) -> None:
        rows = self.collections.get(collection, {})
        for vid, (_, meta) in list(rows.items()):
            if meta["doc"] == document_id and meta["gen"] != keep_generation:
                del rows[vid]

    def delete_ids(self, *, collection: str, ids: Sequence[str]) -> None:
        for vid in ids:
            self.collections.get(collection, {}).pop(vid, None)

    def ids(self, *, collection: str) -> set[str]:
        return set(self.collections.get(collection, {}))

    def present(self, *, collection: str, ids: Sequence[str]) -> set[str]:
        return set(ids) & set(self.collections.get(collection, {}))

    def count(self, *, collection: str) -> int:
        return len(self.collections.get(collection, {}))

    def vectors(self, *, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.collections.get(collection, {})
        return {vid: rows[vid][0] for vid in ids if vid in rows}

    def collection_names(self) -> set[str]:
        return set(self.collections)

    def drop(self, *, collection: str) -> None:
        self.collections.pop(collection, None)


class ScriptedLLM:
    """Answers every question with `answer`, streamed word by word; records each request."""

    def __init__(
        self, answer: str = "E-42 means the tray is empty [1].", model: str = "ministral-8b-2512"
    ) -> None:
        self.answer = answer
        self.config = LLMConfig(
            provider="openai-compatible",
            base_url="http://127.0.0.1:9/v1",
            api_key="-",
            key_setting="",
            model=model,
        )
        self.requests: list[list[ChatMessage]] = []

    @property
    def info(self) -> ModelInfo:
        return model_lookup(self.config.model)

    def model_info(self, model: str) -> ModelInfo:
        return model_lookup(model)

    def learn_window(self, tokens: int) -> None:
        raise AssertionError("not expected in these tests")

    def stream(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> Generator[LLMEvent, None, None]:
        self.requests.append(list(messages))
        for piece in re.findall(r"\s*\S+", self.answer):
            yield TextDelta(piece)
        yield Finished("stop")
        yield Usage(100, len(self.answer.split()))

    def complete(
        self,
        *,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
        model: str | None = None,
    ) -> tuple[str, str, str]:
        self.requests.append(list(messages))
        return "", "A standalone question?", "stop"

    def close(self) -> None:
        pass

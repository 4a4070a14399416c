"""The two embedding backends on the real bundled model: same space, same word pieces."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from ingest.pipeline.embed import get_embedder, onnx_build, onnx_model_path

pytestmark = pytest.mark.slow

SENTENCES = [
    "How do I reset the printer to its factory settings?",
    "Error E-42 means the paper tray is empty.",
    "Python strings are immutable, so every change makes a new string.",
    "The invoice is due thirty days after delivery.",
]


@pytest.fixture(scope="module")
def torch():
    return get_embedder("", "torch")


@pytest.fixture(scope="module")
def int8():
    return get_embedder("", "onnx-int8")  # built under the test DATA_DIR on first use


def test_int8_vectors_agree_with_torch(torch, int8):
    torch_vectors = torch.encode(SENTENCES)
    int8_vectors = int8.encode(SENTENCES, batch_size=3)  # two batches, rows in input order
    assert int8_vectors.shape == torch_vectors.shape and int8_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8_vectors, axis=1), 1.0, atol=1e-4)
    cosine = (torch_vectors * int8_vectors).sum(axis=1)
    assert cosine.min() > 0.98, cosine
    # The nearest sentence to each query is the same under both backends.
    query = ["my printer says the tray has no paper"]
    assert np.argmax(torch.encode(query) @ torch_vectors.T) == 1
    assert np.argmax(int8.encode(query) @ int8_vectors.T) == 1


def test_int8_counts_word_pieces_like_torch_and_has_its_own_name(torch, int8):
    assert int8.count_tokens(SENTENCES) == torch.count_tokens(SENTENCES)
    assert int8.max_tokens == torch.max_tokens == 254
    assert type(torch).__name__ == "SentenceEmbedder"
    assert int8.name == f"{torch.name} (onnx-int8)"
    assert int8.encode([]).shape == (0, 384)


def test_the_build_is_made_once_and_reused(int8, tmp_path):
    first = onnx_model_path(int8.path, tmp_path)
    assert not first.exists()
    built, fresh = onnx_build(int8.path, tmp_path)
    assert built == first and fresh and built.stat().st_size < 40_000_000  # int8: ~23 MB
    again, fresh = onnx_build(int8.path, tmp_path)
    assert again == built and not fresh
    assert [p.name for p in built.parent.iterdir() if p.suffix == ".onnx"] == ["model.onnx"]


def test_an_unknown_backend_is_refused():
    with pytest.raises(ImproperlyConfigured, match="EMBEDDING_BACKEND 'fp16'"):
        get_embedder("", "fp16")


def test_the_web_process_embeds_questions_on_one_thread_with_the_same_vectors(torch):
    """asgi.py limits query embedding to one thread (less CPU per question under load);
    the vectors must not change, or a knowledge base would be searched with other ones."""
    question = "How do I reset the pump controller after a firmware update?"
    script = (
        "import os, sys, json, torch\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
        "import django; django.setup()\n"
        "from ingest.pipeline.embed import embedding_threads_limit, get_embedder\n"
        "embedding_threads_limit(threads=1)\n"
        "vector = get_embedder('', 'torch').encode([sys.argv[1]])[0]\n"
        "print(json.dumps({'threads': torch.get_num_threads(), 'vector': vector.tolist()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, question], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["threads"] == 1
    expected = torch.encode([question])[0]
    assert np.allclose(np.array(result["vector"], dtype=np.float32), expected, atol=1e-5)


def test_without_a_backend_the_setting_chooses_it(settings, torch, int8):
    """Benchmarks and commands that name no backend measure what the server runs."""
    settings.EMBEDDING_BACKEND = "onnx-int8"
    assert get_embedder("") is int8
    settings.EMBEDDING_BACKEND = "torch"
    assert get_embedder("") is torch

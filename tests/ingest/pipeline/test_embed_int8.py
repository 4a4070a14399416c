"""The int8 build is checked against float32 before any vector of it is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from onnxruntime.quantization import QuantType, quantize_dynamic

from ingest.pipeline.embed import (
    default_model_path,
    get_embedder,
    int8,
    onnx_build,
    onnx_model_path,
)

pytestmark = pytest.mark.slow


def test_the_check_tells_a_faithful_build_from_one_that_lost_precision(tmp_path):
    model = default_model_path()
    get_embedder("", "onnx-int8")  # the product's build, made on first use
    built = onnx_model_path(model, Path(settings.EMBEDDING_CACHE_DIR))
    fp32, per_tensor = tmp_path / "fp32.onnx", tmp_path / "per-tensor.onnx"
    int8._export(model, fp32)
    # Per-tensor unsigned weights: a recipe that loses too much of MiniLM (about 0.975).
    quantize_dynamic(str(fp32), str(per_tensor), per_channel=False, weight_type=QuantType.QUInt8)

    kept = int8.faithfulness(model_path=model, reference=fp32, candidate=built)
    lost = int8.faithfulness(model_path=model, reference=fp32, candidate=per_tensor)
    assert kept >= int8.FAITHFUL_COSINE > lost, (kept, lost)
    assert int8.faithfulness(model_path=model, reference=fp32, candidate=fp32) > 0.9999


def test_a_model_int8_cannot_hold_is_refused_at_start_with_what_to_do(tmp_path):
    """A verdict from an earlier build refuses at once: no ten-second rebuild per start."""
    model = default_model_path()
    target = onnx_model_path(model, tmp_path)
    target.parent.mkdir(parents=True)
    (target.parent / "refused.json").write_text(json.dumps({"min_cosine": 0.02}))

    with pytest.raises(ImproperlyConfigured) as refused:
        onnx_build(model, tmp_path)
    message = str(refused.value)
    assert "cosine 0.02" in message and "EMBEDDING_BACKEND=torch" in message
    assert not target.exists()

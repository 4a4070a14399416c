"""The onnx-int8 build of an embedding model: export, quantize, and check it is faithful.

Dynamic int8 quantization suits some models and ruins others. It keeps all-MiniLM-L6-v2
at cosine 0.99 to float32, but all-mpnet-base-v2's feed-forward and value projections
carry activation outliers that int8 can't hold: its vectors come out nearly random
(cosine 0.02 to float32), and search over them would be garbage without any error. So
every build is compared with the float32 export on fixed probe texts before it is used.
A build below `FAITHFUL_COSINE` is refused with ImproperlyConfigured, and the verdict is
kept beside it so later starts refuse at once instead of rebuilding.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("docent.ingest")

# Bumped when the export, quantization or check changes, so old builds are not reused
# (v1 builds were never checked).
RECIPE = "onnx-int8-v2:opset17:per-channel:qint8:checked"
# The lowest cosine to float32 any probe text may have. MiniLM's int8 build: min 0.99.
FAITHFUL_COSINE = 0.98
_REFUSED = "refused.json"

# Short questions, code, numbers and a passage longer than the models' 256-word-piece
# window, so that the check covers what questions and chunks look like.
PROBE_TEXTS = [
    "How do I read a file line by line?",
    "What does the amber light on the front panel mean?",
    "Error E-42: the disk is full. Free some space and try again.",
    "set logscale y; plot 'data.dat' using 1:2 with lines title 'load'",
    "Why are default arguments shared between calls of a function?",
    "os.path.join(base, name) returns the joined path as a string",
    "Install the package with pip, then restart the server to load the new settings.",
    "Invoice 2024-117: 3 items, total 149.90 EUR, due on 15 March.",
    "A screenshot of the settings page, with the dark theme toggle switched on.",
    "Das Handbuch erklärt, wie man den Drucker mit dem WLAN verbindet.",
    " ".join(
        "The garbage collector frees objects that are no longer reachable; reference "
        "cycles are found by a separate pass that runs when allocations pass a threshold."
        for _ in range(12)
    ),
]


def model_path_hash(model_path: Path) -> str:
    """16 hex digits naming a build: the recipe and the model's weights and tokenizer."""
    digest = hashlib.sha256(RECIPE.encode())
    for name in ("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin"):
        if (model_path / name).is_file():
            with (model_path / name).open("rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def check_exportable(model_path: Path) -> None:
    """The ONNX graph does mean pooling then L2 normalisation: refuse models that don't."""
    modules = json.loads((model_path / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    pooling = model_path / next((m["path"] for m in modules if m["type"].endswith("Pooling")), "")
    config = json.loads((pooling / "config.json").read_text()) if pooling.is_dir() else {}
    modes = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ImproperlyConfigured(
            f"EMBEDDING_BACKEND=onnx-int8 needs a mean-pooled, normalised model; {model_path} "
            f"is {' + '.join(kinds)} ({', '.join(modes) or 'no pooling'}). Use torch."
        )


def build(model_path: Path, target: Path) -> bool:
    """Make `target`, the checked int8 build of `model_path`, unless it exists (about 10 s
    for MiniLM on 2 cores). Returns whether it was built now.

    A file lock serialises processes that start together; the file appears by rename, so
    a reader never sees half of it. ImproperlyConfigured when the model can't be built
    faithfully, now or at an earlier attempt.
    """
    if target.is_file():
        return False
    _refuse_if_recorded(model_path, target.parent)
    check_exportable(model_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # another process built it while we waited
            return False
        _refuse_if_recorded(model_path, target.parent)
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            fp32, int8 = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
            _export(model_path, fp32)
            _quantize(fp32, int8)
            cosine = faithfulness(model_path=model_path, reference=fp32, candidate=int8)
            if cosine < FAITHFUL_COSINE:
                (target.parent / _REFUSED).write_text(json.dumps({"min_cosine": cosine}))
                _refuse_if_recorded(model_path, target.parent)
            int8.replace(target)
    logger.info("Built %s: min cosine %.3f to float32 on probe texts", target, cosine)
    return True


def faithfulness(*, model_path: Path, reference: Path, candidate: Path) -> float:
    """The lowest cosine between `candidate`'s and `reference`'s vectors of PROBE_TEXTS
    (two ONNX builds of `model_path`; 1.0 means the same vectors)."""
    import onnxruntime
    from transformers import AutoTokenizer

    from . import max_seq_length

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    encoded = tokenizer(
        PROBE_TEXTS,
        padding=True,
        truncation=True,
        max_length=max_seq_length(model_path),
        return_tensors="np",
    )
    feeds = {key: encoded[key].astype(np.int64) for key in ("input_ids", "attention_mask")}
    vectors = []
    for path in (reference, candidate):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        vectors.append(session.run(None, feeds)[0])
    return float((vectors[0] * vectors[1]).sum(axis=1).min())


def _refuse_if_recorded(model_path: Path, build_dir: Path) -> None:
    verdict = build_dir / _REFUSED
    if not verdict.is_file():
        return
    cosine = json.loads(verdict.read_text())["min_cosine"]
    raise ImproperlyConfigured(
        f"EMBEDDING_BACKEND=onnx-int8 can't run {model_path.name}: quantized to int8, its "
        f"vectors fall to cosine {cosine:.2f} of float32's (at least {FAITHFUL_COSINE} is "
        f"needed), so search would rank nonsense. Set EMBEDDING_BACKEND=torch for this "
        f"model. (Verdict kept in {verdict}; delete it to try again.)"
    )


def _export(model_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in our output
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        """Token states -> mean over real tokens -> unit length, as sentence-transformers."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            states = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on opset choices
        torch.onnx.export(
            Pooled(),
            (sample, sample),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantize(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel signed weights: cosine 0.995 to float32 for MiniLM, against 0.95
    # per-tensor.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it suggests pre-processing on the root logger
    try:
        quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)

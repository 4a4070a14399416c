"""OCR for images; the only module that talks to the OCR engine (RapidOCR, PP-OCRv4 ONNX).

Pipeline, all sizes in pixels:

1. Normalise any PIL image to RGB: first frame of animations, alpha flattened onto white,
   16/32-bit and float images contrast-stretched to 8 bits.
2. Detect text lines. The detector sees at most ``DET_MAX_SIDE`` px on the longest side.
   When the median detected line is shorter than ``min_text_height_px``, detection is
   repeated on a LANCZOS-upscaled copy (the detector's own upscale is plain bilinear).
3. Cut every line from the ORIGINAL pixels with a little padding and resample it to the
   recogniser's 48 px input height, so thumbnails and huge scans alike reach the
   recogniser at its native size.
4. Decode the CTC output here rather than in RapidOCR: the Chinese PP-OCRv4 model seldom
   makes "space" the most likely class, but the probability of a space between two words
   still rises clearly, so a low threshold on it restores the gaps between English words.
5. Group boxes into visual lines and read them top-to-bottom, left-to-right.

See ``bench/OCR.md`` for the measurements behind each constant.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from typing import TypeAlias

    from rapidocr_onnxruntime import RapidOCR

    OcrEngine: TypeAlias = RapidOCR
else:
    OcrEngine = Any

DET_MAX_SIDE = 2000  # detector input cap (px); detection time grows with its area
MAX_UPSCALE = 4.0  # beyond this, upscaling only invents pixels
MIN_RESCALE_GAIN = 1.15  # a second detection pass must grow the text at least this much
CROP_PAD = 0.15  # padding around each line crop, as a share of the line height
SPACE_PROB = 0.05  # space-class probability that counts as a gap between two words
MIN_LINE_CONFIDENCE = 0.5  # RapidOCR's own text_score default
REC_HEIGHT = 48  # recogniser input height (px), fixed by the PP-OCRv4 model
REC_MIN_WIDTH = 320  # PaddleOCR pads narrower lines to this width (px)
REC_BATCH = 8
# Bilinear, not LANCZOS/BICUBIC: the model was trained on bilinear resizes and the sharper
# filters' ringing cost accuracy on small text (bench/ocr_upscale.py --resample).
CROP_RESAMPLE = Image.Resampling.BILINEAR
MAX_THREADS = 4


@dataclass(frozen=True)
class OcrLine:
    """One visual line of text; ``box`` is (x0, y0, x1, y1) in original image pixels."""

    text: str
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class OcrResult:
    """Recognised text in reading order.

    ``scale`` is the factor the image was resized by for text detection (> 1: upscaled
    because the text was small, < 1: downscaled because the image was large).
    """

    text: str
    lines: tuple[OcrLine, ...]
    mean_confidence: float
    scale: float


EMPTY_SCALE = 1.0


def load_engine() -> OcrEngine:
    """Build a RapidOCR engine from the ONNX models bundled in the wheel (no downloads).

    Takes a few hundred milliseconds; callers cache the result (or use ``get_engine``).
    The engine is safe to share between threads as ``ocr_image`` uses it.
    """
    from rapidocr_onnxruntime import RapidOCR

    # intra-op threads only: inter-op parallelism just oversubscribes a small box.
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    engine = RapidOCR(
        use_cls=False,  # the 180-degree classifier flipped upright screenshot lines
        max_side_len=DET_MAX_SIDE,
        intra_op_num_threads=threads,
        inter_op_num_threads=1,
        print_verbose=False,
    )
    _recogniser(engine)  # fail at load time if the RapidOCR internals moved
    return engine


@functools.lru_cache(maxsize=1)
def get_engine() -> OcrEngine:
    """Process-wide shared engine."""
    return load_engine()


def ocr_image(
    image: Image.Image,
    *,
    engine: OcrEngine,
    min_text_height_px: int = 32,
    upscale: bool = True,
    fix_spaces: bool = True,
) -> OcrResult:
    """Recognise the text in ``image``; an image without text gives ``text == ""``.

    ``min_text_height_px``: detected lines shorter than this (median, px) trigger a second
    detection pass on an upscaled copy, capped at ``MAX_UPSCALE`` and ``DET_MAX_SIDE``.
    ``upscale=False`` and ``fix_spaces=False`` reproduce stock RapidOCR behaviour (tight
    native-resolution crops, argmax decoding) for benchmarks and tests.
    """
    rgb = to_rgb(image)
    width, height = rgb.size
    if min(width, height) < 2:
        return OcrResult("", (), 0.0, EMPTY_SCALE)

    scale = min(1.0, DET_MAX_SIDE / max(width, height))
    quads = _detect(engine, rgb, scale)
    if upscale and quads:
        line_height = float(np.median([q[:, 1].max() - q[:, 1].min() for q in quads]))
        target = min(min_text_height_px / max(line_height, 1.0), MAX_UPSCALE)
        target = min(target, DET_MAX_SIDE / max(width, height))
        if target >= scale * MIN_RESCALE_GAIN:
            scale = target
            quads = _detect(engine, rgb, scale)
    if not quads:
        return OcrResult("", (), 0.0, scale)

    pad = CROP_PAD if upscale else 0.0
    crops = [_line_crop(rgb, quad, pad) for quad in quads]
    recognised = _recognise(engine, crops, fix_spaces=fix_spaces)
    segments = [
        (_bbox(quad, width, height), text, conf)
        for quad, (text, conf) in zip(quads, recognised, strict=True)
        if text.strip() and conf >= MIN_LINE_CONFIDENCE
    ]
    lines = tuple(_reading_order(segments))
    mean = float(np.mean([line.confidence for line in lines])) if lines else 0.0
    return OcrResult("\n".join(line.text for line in lines), lines, mean, scale)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; first frame of animations; transparency flattened onto white."""
    frame = image
    if getattr(image, "n_frames", 1) > 1:
        position = image.tell()
        image.seek(0)
        frame = image.copy()
        image.seek(position)
    if frame.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # convert("L") would clip everything above 255, i.e. most of a 16-bit image.
        values = np.asarray(frame, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        stretched = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        frame = Image.fromarray(stretched.astype(np.uint8), "L")
    if frame.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return frame.convert("RGB")


def _detect(engine: OcrEngine, rgb: Image.Image, scale: float) -> list[np.ndarray]:
    """Line quads (4x2, original pixels) from the detector run on ``rgb`` resized by ``scale``."""
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        # LANCZOS for upscaling; our own antialiased downscale beats RapidOCR's cv2 one.
        resample = Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BILINEAR
        rgb = rgb.resize(size, resample)
    bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    boxes, _ = engine(bgr, use_det=True, use_cls=False, use_rec=False)
    return [np.asarray(box, dtype=np.float64).reshape(4, 2) / scale for box in boxes or []]


def _line_crop(rgb: Image.Image, quad: np.ndarray, pad: float) -> Image.Image:
    """Axis-aligned crop of one line, resampled to the recogniser height (48 px).

    The crop box stays fractional: rounding it to whole pixels would add up to 40 %
    padding to the 4 px lines of a thumbnail.
    """
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    margin = pad * (y1 - y0)
    x0, y0 = max(0.0, x0 - margin), max(0.0, y0 - margin)
    x1, y1 = min(float(rgb.width), x1 + margin), min(float(rgb.height), y1 + margin)
    x1, y1 = max(x1, x0 + 1.0), max(y1, y0 + 1.0)
    width = max(1, round((x1 - x0) * REC_HEIGHT / (y1 - y0)))
    return rgb.resize((width, REC_HEIGHT), CROP_RESAMPLE, box=(x0, y0, x1, y1))


def _recogniser(engine: OcrEngine) -> tuple[Any, list[str], int]:
    """The recognition ONNX session, its character list and the index of the space class."""
    try:
        rec = engine.text_rec
        session, charset = rec.session, list(rec.postprocess_op.character)
        shape = tuple(rec.rec_image_shape)
    except AttributeError as exc:  # pragma: no cover - depends on the installed version
        raise RuntimeError("unsupported rapidocr-onnxruntime; expected 1.4.x") from exc
    if shape[1] != REC_HEIGHT or charset[0] != "blank" or " " not in charset:
        raise RuntimeError(f"unexpected recogniser layout {shape}")
    return session, charset, charset.index(" ")


def _recognise(
    engine: OcrEngine, crops: list[Image.Image], *, fix_spaces: bool
) -> list[tuple[str, float]]:
    """(text, confidence) per crop; crops of similar width share a batch."""
    session, charset, space = _recogniser(engine)
    order = sorted(range(len(crops)), key=lambda i: crops[i].width)
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    for start in range(0, len(order), REC_BATCH):
        ids = order[start : start + REC_BATCH]
        width = max(REC_MIN_WIDTH, *(crops[i].width for i in ids))
        batch = np.zeros((len(ids), 3, REC_HEIGHT, width), dtype=np.float32)
        for row, i in enumerate(ids):
            # BGR in [-1, 1], the layout PaddleOCR trained with.
            pixels = np.asarray(crops[i], dtype=np.float32)[:, :, ::-1] / 127.5 - 1.0
            batch[row, :, :, : pixels.shape[1]] = pixels.transpose(2, 0, 1)
        probs = session(batch)[0]
        for row, i in enumerate(ids):
            results[i] = _decode(probs[row], charset, space, fix_spaces)
    return results


def _decode(
    probs: np.ndarray, charset: list[str], space: int, fix_spaces: bool
) -> tuple[str, float]:
    """Greedy CTC decode of one (frames x classes) matrix; spaces decided separately."""
    best = probs.argmax(axis=1)
    emitted = best != 0
    emitted[1:] &= best[1:] != best[:-1]
    frames = np.flatnonzero(emitted & (best != space))
    pieces: list[str] = []
    for prev, frame in zip([None, *frames[:-1]], frames, strict=True):
        if prev is not None:
            between = slice(prev + 1, frame)
            if fix_spaces:
                gap = probs[between, space].max(initial=0.0) >= SPACE_PROB
            else:
                gap = bool((best[between] == space).any())
            if gap:
                pieces.append(" ")
        pieces.append(charset[best[frame]])
    confidence = float(probs[frames, best[frames]].mean()) if len(frames) else 0.0
    return "".join(pieces), confidence


def _bbox(quad: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return (max(0, x0), max(0, y0), min(width, x1), min(height, y1))


def _reading_order(
    segments: list[tuple[tuple[int, int, int, int], str, float]],
) -> list[OcrLine]:
    """Merge segments that share a visual line; lines top-to-bottom, segments left-to-right.

    Two segments share a line when they overlap vertically by more than half the shorter
    one's height, which keeps label/value pairs together but not adjacent text rows.
    """
    rows: list[list[tuple[tuple[int, int, int, int], str, float]]] = []
    for seg in sorted(segments, key=lambda s: (s[0][1] + s[0][3]) / 2):
        (_, top, _, bottom) = seg[0]
        for row in rows:
            row_top = sum(s[0][1] for s in row) / len(row)
            row_bottom = sum(s[0][3] for s in row) / len(row)
            overlap = min(bottom, row_bottom) - max(top, row_top)
            if overlap > 0.5 * min(bottom - top, row_bottom - row_top):
                row.append(seg)
                break
        else:
            rows.append([seg])
    lines = []
    for row in sorted(rows, key=lambda r: min(s[0][1] for s in r)):
        row.sort(key=lambda s: s[0][0])
        chars = [max(1, len(s[1])) for s in row]
        lines.append(
            OcrLine(
                text=" ".join(s[1] for s in row),
                confidence=float(np.average([s[2] for s in row], weights=chars)),
                box=(
                    min(s[0][0] for s in row),
                    min(s[0][1] for s in row),
                    max(s[0][2] for s in row),
                    max(s[0][3] for s in row),
                ),
            )
        )
    return lines

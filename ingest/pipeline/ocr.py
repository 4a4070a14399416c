"""OCR for images; the only module that talks to the OCR engine (RapidOCR, PP-OCRv4 ONNX).

Pipeline (all sizes in pixels):

1. Normalise any PIL image to RGB: first frame of animations, transparency flattened onto
   white, 16/32-bit and float images contrast-stretched to 8 bits.
2. Detect text lines on a copy whose longest side is brought into ``DET_PROBE_MIN_SIDE``
   to ``DET_PROBE_SIDE`` px. When the median line is shorter than
   ``min_text_height_px``, detect again on a copy scaled (LANCZOS) to
   bring it to that height: at most ``MAX_UPSCALE`` times, ``DET_MAX_SIDE`` px long and
   ``DET_MAX_PIXELS`` large, so detection time stays bounded.
3. Cut each line from the ORIGINAL pixels, hugging its ink with a fixed margin, and
   resample it to the recogniser's 48 px input height: thumbnails get upscaled, huge
   scans downscaled, and the text always fills the same share of the recogniser input.
4. Decode the recogniser's CTC output here: the Chinese PP-OCRv4 model rarely makes
   "space" the most likely class between English words, but its probability still rises
   there, so a low threshold on it puts the spaces back.
5. Merge boxes that share a visual line; read top-to-bottom, left-to-right.

bench/ocr_upscale.py measures each step; bench/OCR.md has the numbers.
"""

from __future__ import annotations

import functools
import math
import os
import threading
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

DET_PROBE_SIDE = 2000  # first detection pass: longest side cap (px), RapidOCR's default
DET_PROBE_MIN_SIDE = 1280  # ... and small images are upscaled to this longest side (px)
DET_MAX_SIDE = 4000  # upscaled detection pass: longest side cap (px) ...
DET_MAX_PIXELS = 5_000_000  # ... and area cap (px); detection time grows with the area
MAX_UPSCALE = 4.0  # beyond this, upscaling only invents pixels
MIN_RESCALE_GAIN = 1.15  # a second detection pass must grow the text at least this much
CROP_PAD = 0.35  # margin around a line's ink, as a share of the ink height
INK_SHARE = 0.4  # a pixel is ink when it differs from the background by this share ...
MIN_INK_CONTRAST = 24.0  # ... of the line's strongest contrast, itself at least this (0-255)
SPACE_PROB = 0.05  # space-class probability that counts as a gap between two words
MIN_LINE_CONFIDENCE = 0.5  # RapidOCR's own text_score default
REC_HEIGHT = 48  # recogniser input height (px), fixed by the PP-OCRv4 model
REC_MIN_WIDTH = 320  # PaddleOCR pads narrower lines to this width (px)
REC_BATCH = 8
# Bilinear, not LANCZOS/BICUBIC: the model was trained on bilinear resizes and the sharper
# filters' ringing cost accuracy on small text (bench/ocr_upscale.py --resample).
CROP_RESAMPLE = Image.Resampling.BILINEAR
MAX_THREADS = 4  # onnxruntime intra-op threads; these small models gain little beyond

Segment = tuple[tuple[int, int, int, int], str, float]  # (x0, y0, x1, y1) px, text, confidence


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


def load_engine() -> OcrEngine:
    """Build a RapidOCR engine from the ONNX models bundled in the wheel (no downloads).

    Loading the models takes well under a second; callers keep the engine (or use
    ``get_engine``). ``ocr_image`` passes no per-call options, which RapidOCR would store
    on the engine, so one engine can serve several threads.
    """
    # onnxruntime 1.29+ uploads usage telemetry unless told not to before it starts;
    # settings set this for every Django process, and this covers any other importer.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime
    from rapidocr_onnxruntime import RapidOCR

    onnxruntime.disable_telemetry_events()
    # intra-op threads only: inter-op parallelism just oversubscribes a small box.
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    engine = RapidOCR(
        use_cls=False,  # the 180-degree classifier flipped upright screenshot lines
        max_side_len=DET_MAX_SIDE,
        # We size the detector input ourselves. RapidOCR's default instead stretches the
        # SHORT side to 736 px, which turns a 520x60 one-line image into 6400x736.
        det_limit_type="max",
        det_limit_side_len=DET_MAX_SIDE,
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

    ``min_text_height_px``: when the median detected line is shorter than this (px, in
    the original image), detection is repeated on a copy scaled to bring it to this
    height, within the caps above.
    ``upscale=False`` keeps stock RapidOCR geometry (one detection pass, crops exactly the
    detector boxes); ``fix_spaces=False`` keeps its argmax decoding. Both exist for the
    benchmark and tests.

    One image at a time per process: the engine is safe to share between threads (see
    ``load_engine``), but each run already uses every intra-op thread, so two at once only
    slow each other down.
    """
    with _one_at_a_time:
        return _ocr_one(image, engine, min_text_height_px, upscale, fix_spaces)


_one_at_a_time = threading.Lock()


def _ocr_one(
    image: Image.Image, engine: OcrEngine, min_text_height_px: int, upscale: bool, fix_spaces: bool
) -> OcrResult:
    rgb = to_rgb(image)
    width, height = rgb.size
    if min(width, height) < 2:
        return OcrResult("", (), 0.0, 1.0)

    longest = max(width, height)
    scale = min(max(1.0, DET_PROBE_MIN_SIDE / longest), DET_PROBE_SIDE / longest)
    quads = _detect(engine, rgb, scale)
    if upscale and quads:
        line_height = float(np.median([q[:, 1].max() - q[:, 1].min() for q in quads]))
        target = min(
            min_text_height_px / max(line_height, 1.0),
            MAX_UPSCALE,
            DET_MAX_SIDE / longest,
            math.sqrt(DET_MAX_PIXELS / (width * height)),
        )
        # Text already this tall is fine even if the probe shrank a big image.
        if line_height < min_text_height_px and target >= scale * MIN_RESCALE_GAIN:
            scale = target
            quads = _detect(engine, rgb, scale)
    if not quads:
        return OcrResult("", (), 0.0, scale)

    pad = CROP_PAD if upscale else 0.0
    gray = np.asarray(rgb.convert("L"))
    crops = [_line_crop(rgb, gray, quad, pad) for quad in quads]
    recognised = _recognise(engine, crops, fix_spaces=fix_spaces)
    segments: list[Segment] = [
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
        stretched = (values - low) * (255.0 / (high - low)) if high > low else 0 * values
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


def _line_crop(rgb: Image.Image, gray: np.ndarray, quad: np.ndarray, pad: float) -> Image.Image:
    """Crop one line and resample it to the recogniser height (48 px).

    With ``pad`` the crop hugs the ink found inside the detector box plus ``pad`` times
    the ink height: detector boxes around small text are loose (16 px for an 8 px font),
    and the recogniser is sensitive to how much of its 48 px the text fills. ``pad=0``
    crops the bare detector box, as RapidOCR does. The box stays fractional; whole pixels
    would add up to 40 % padding to a thumbnail's 4 px text. Lines are taken as
    horizontal (screenshots, scans); a rotated line gets its bounding box.
    """
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    if pad:
        ink = _ink_rows(gray, x0, y0, x1, y1)
        if ink is not None:
            y0, y1 = ink
    margin = pad * (y1 - y0)
    x0, y0 = max(0.0, x0 - margin), max(0.0, y0 - margin)
    x1, y1 = min(float(rgb.width), x1 + margin), min(float(rgb.height), y1 + margin)
    x1, y1 = max(x1, x0 + 1.0), max(y1, y0 + 1.0)
    width = max(1, round((x1 - x0) * REC_HEIGHT / (y1 - y0)))
    return rgb.resize((width, REC_HEIGHT), CROP_RESAMPLE, box=(x0, y0, x1, y1))


def _ink_rows(
    gray: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> tuple[float, float] | None:
    """Top and bottom (px) of the text ink inside a detector box, or None if unclear."""
    top, left = max(0, math.floor(y0)), max(0, math.floor(x0))
    region = gray[top : math.ceil(y1), left : math.ceil(x1)].astype(np.float32)
    if region.size == 0:
        return None
    contrast = np.abs(region - np.median(region))
    strongest = float(contrast.max())
    if strongest < MIN_INK_CONTRAST:
        return None
    rows = np.flatnonzero((contrast > INK_SHARE * strongest).any(axis=1))
    # Keep the run of ink rows with the most ink; stray rows at the edges are the
    # descenders/ascenders of neighbouring lines that the loose box reached into.
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > max(1, 0.15 * len(region))) + 1)
    mass = [contrast[run].sum() for run in runs]
    run = runs[int(np.argmax(mass))]
    if run[-1] - run[0] + 1 < 2:
        return None
    return top + float(run[0]), top + float(run[-1]) + 1.0


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
    for n, frame in enumerate(frames):
        if n:
            between = slice(frames[n - 1] + 1, frame)
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
    (x0, y0), (x1, y1) = np.floor(quad.min(axis=0)), np.ceil(quad.max(axis=0))
    return max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))


def _reading_order(segments: list[Segment]) -> list[OcrLine]:
    """Merge segments that share a visual line; lines top-to-bottom, segments left-to-right.

    A segment joins the row it overlaps most vertically, if that is more than half the
    shorter height: label/value pairs stay together, adjacent text rows do not.
    """
    rows: list[list[Segment]] = []
    bands: list[list[float]] = []  # per row: sum of segment tops, sum of bottoms (px)
    for seg in sorted(segments, key=lambda s: s[0][1] + s[0][3]):
        top, bottom = seg[0][1], seg[0][3]
        best, best_overlap = -1, 0.5
        for i, (tops, bottoms) in enumerate(bands):
            row_top, row_bottom = tops / len(rows[i]), bottoms / len(rows[i])
            shorter = max(1.0, min(bottom - top, row_bottom - row_top))
            overlap = (min(bottom, row_bottom) - max(top, row_top)) / shorter
            if overlap > best_overlap:
                best, best_overlap = i, overlap
        if best < 0:
            rows.append([seg])
            bands.append([top, bottom])
        else:
            rows[best].append(seg)
            bands[best][0] += top
            bands[best][1] += bottom
    lines = []
    for row in sorted(rows, key=lambda r: min(s[0][1] for s in r)):
        row.sort(key=lambda s: s[0][0])
        x0s, y0s, x1s, y1s = zip(*(s[0] for s in row), strict=True)
        weights = [len(s[1]) for s in row]
        lines.append(
            OcrLine(
                text=" ".join(s[1] for s in row),
                confidence=float(np.average([s[2] for s in row], weights=weights)),
                box=(min(x0s), min(y0s), max(x1s), max(y1s)),
            )
        )
    return lines

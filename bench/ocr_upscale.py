"""Measure what upscaling and the space fix in ingest/pipeline/ocr.py buy.

Run from the repository root:  python bench/ocr_upscale.py [--quick] [--resample]

Renders synthetic UI screenshots with Pillow's bundled font (no system fonts) at several
font sizes (px), plus thumbnails (a 1200 px wide screenshot shrunk to 300-600 px), and
OCRs each one with:

  stock     RapidOCR() exactly as shipped (defaults, angle classifier on)
  plain     ocr_image(upscale=False, fix_spaces=False): our crops/decoder, stock settings
  +space    ocr_image(upscale=False, fix_spaces=True)
  +upscale  ocr_image(upscale=True,  fix_spaces=False)
  both      ocr_image(upscale=True,  fix_spaces=True)   <- the default

Scores: char = 1 - edit distance / ground-truth length (whitespace runs collapsed),
word = share of ground-truth words (whitespace tokens, case-sensitive, punctuation kept)
found as whole words in the output; time = mean seconds per image.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.pipeline import ocr

SCREENS: dict[str, list[list[str]]] = {
    "dialog": [
        ["Connection Error"],
        ["Error 404: connection refused by server"],
        ["The server at api.example.com did not respond."],
        ["Retry in 30 seconds or contact support@example.com."],
        ["Cancel", "Retry"],
    ],
    "settings": [
        ["Settings > Network > Proxy"],
        ["Enable automatic updates (recommended)"],
        ["Check for updates every 24 hours"],
        ["Proxy host:", "10.0.0.12"],
        ["Port:", "8080"],
        ["Use system proxy settings", "ON"],
        ["Save changes"],
    ],
    "log": [
        ["2024-03-17 14:02:11 WARN Disk usage at 91% on /dev/sda1"],
        ["2024-03-17 14:02:15 ERROR Failed to open config.yaml (errno 2)"],
        ["2024-03-17 14:03:00 INFO Retrying request #3 after 500ms"],
        ["[worker-2] Job 8812 finished in 4.2s, exit code 0"],
    ],
    "account": [
        ["Username: alice.smith@example.com"],
        ["Password must be at least 12 characters long."],
        ["Two-factor authentication is OFF"],
        ["Last login: Tue Mar 12, 09:41 AM from 192.168.1.20"],
        ["Click Save to apply your changes."],
    ],
}
FONT_SIZES = (8, 10, 12, 14, 18, 24)
THUMBS = ((16, 300), (16, 400), (20, 300), (16, 600))  # (font px at 1200 px wide, thumb px)


def render(rows: list[list[str]], size: int) -> tuple[Image.Image, str]:
    """A light-theme window; rows with two cells get a right-hand value column."""
    font = ImageFont.load_default(size=size)
    pad, pitch = max(6, size), round(size * 1.6)
    widest = max(font.getlength(" ".join(r)) for r in rows)
    column = round(pad + widest * 0.55 + 2 * size)
    right = max((column + font.getlength(r[1]) for r in rows if len(r) > 1), default=0)
    img = Image.new("RGB", (round(max(widest + 2 * pad, right + pad)), pitch * len(rows) + 2 * pad))
    img.paste((246, 246, 248), (0, 0, *img.size))
    draw = ImageDraw.Draw(img)
    for i, row in enumerate(rows):
        draw.text((pad, pad + i * pitch), row[0], font=font, fill=(30, 30, 30))
        if len(row) > 1:
            draw.text((column, pad + i * pitch), row[1], font=font, fill=(30, 30, 30))
    return img, "\n".join(" ".join(r) for r in rows)


def thumbnail(rows: list[list[str]], size: int, thumb_width: int) -> tuple[Image.Image, str]:
    """The screen on a 1200 px wide 16:9 desktop, shrunk like a gallery thumbnail."""
    img, truth = render(rows, size)
    desktop = Image.new("RGB", (1200, max(img.height, 675)), (246, 246, 248))
    desktop.paste(img, (0, 0))
    factor = thumb_width / desktop.width
    size2 = (thumb_width, round(desktop.height * factor))
    return desktop.resize(size2, Image.Resampling.LANCZOS), truth


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _normalise(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def char_accuracy(truth: str, text: str) -> float:
    truth, text = _normalise(truth), _normalise(text)
    return max(0.0, 1 - edit_distance(truth, text) / max(1, len(truth)))


def word_accuracy(truth: str, text: str) -> float:
    expected, found = Counter(truth.split()), Counter(text.split())
    return sum((expected & found).values()) / max(1, sum(expected.values()))


def stock() -> Callable[[Image.Image], str]:
    """RapidOCR exactly as shipped (reference only; the product goes through ocr.py).

    Lines are put in reading order the same way as ocr_image does.
    """
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=os.cpu_count() or 1, inter_op_num_threads=1)

    def run(img: Image.Image) -> str:
        bgr = np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])
        found, _ = engine(bgr)
        segments = []
        for quad, text, conf in found or []:
            q = np.asarray(quad, dtype=float)
            segments.append((ocr._bbox(q, img.width, img.height), text, float(conf)))
        return "\n".join(line.text for line in ocr._reading_order(segments))

    return run


def ours(engine: ocr.OcrEngine, **options: bool) -> Callable[[Image.Image], str]:
    return lambda img: ocr.ocr_image(img, engine=engine, **options).text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one screen per case")
    parser.add_argument("--resample", action="store_true", help="also compare crop filters")
    args = parser.parse_args()

    screens = list(SCREENS.values())[:1] if args.quick else list(SCREENS.values())
    cases: list[tuple[str, list[tuple[Image.Image, str]]]] = []
    for size in FONT_SIZES:
        cases.append((f"screenshot {size:>2} px font", [render(r, size) for r in screens]))
    for size, width in THUMBS:
        label = f"thumb {size}px@1200 -> {width}"
        cases.append((label, [thumbnail(r, size, width) for r in screens]))

    start = time.perf_counter()
    engine = ocr.load_engine()
    print(f"load_engine: {time.perf_counter() - start:.2f} s")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, CPU only, "
        f"Python {platform.python_version()}"
    )
    configs: dict[str, Callable[[Image.Image], str]] = {
        "stock": stock(),
        "plain": ours(engine, upscale=False, fix_spaces=False),
        "+space": ours(engine, upscale=False, fix_spaces=True),
        "+upscale": ours(engine, upscale=True, fix_spaces=False),
        "both": ours(engine, upscale=True, fix_spaces=True),
    }
    if args.resample:
        for name, flt in [("bicubic", "BICUBIC"), ("lanczos", "LANCZOS")]:
            configs[f"both/{name}"] = _with_resample(engine, getattr(Image.Resampling, flt))
    report(cases, configs)
    big_image(engine)


def _with_resample(engine: ocr.OcrEngine, resample: Image.Resampling) -> Callable:
    def run(img: Image.Image) -> str:
        default, ocr.CROP_RESAMPLE = ocr.CROP_RESAMPLE, resample
        try:
            return ocr.ocr_image(img, engine=engine).text
        finally:
            ocr.CROP_RESAMPLE = default

    return run


def report(cases: list, configs: dict[str, Callable[[Image.Image], str]]) -> None:
    header = f"{'case':27s}" + "".join(f"{name:>17s}" for name in configs)
    print("\nchar / word accuracy per case (mean over screens)")
    print(header)
    totals: dict[str, list[float]] = {name: [] for name in configs}
    chars: dict[str, list[float]] = {name: [] for name in configs}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for label, images in cases:
        cells = []
        for name, run in configs.items():
            c_scores, w_scores = [], []
            for img, truth in images:
                start = time.perf_counter()
                text = run(img)
                times[name].append(time.perf_counter() - start)
                c_scores.append(char_accuracy(truth, text))
                w_scores.append(word_accuracy(truth, text))
            c, w = statistics.mean(c_scores), statistics.mean(w_scores)
            chars[name].append(c)
            totals[name].append(w)
            cells.append(f"{c:.3f} / {w:.3f}")
        print(f"{label:27s}" + "".join(f"{cell:>17s}" for cell in cells), flush=True)
    print(
        f"{'MEAN':27s}"
        + "".join(
            f"{statistics.mean(chars[n]):.3f} / {statistics.mean(totals[n]):.3f}".rjust(17)
            for n in configs
        )
    )
    print(
        f"{'s / image (median)':27s}"
        + "".join(f"{statistics.median(times[n]):17.2f}" for n in configs)
    )


def big_image(engine: ocr.OcrEngine) -> None:
    """Time bound on large inputs: a 4K screenshot and a 6000x4000 'scan'."""
    print()
    for (width, height), size in [((3840, 2160), 14), ((6000, 4000), 48)]:
        canvas = Image.new("RGB", (width, height), (236, 238, 242))
        truths, x = [], 40
        for rows in SCREENS.values():
            img, truth = render(rows, size)
            if x + img.width > width:
                break
            canvas.paste(img, (x, 40))
            truths.append(truth)
            x += img.width + 3 * size
        truth = "\n".join(truths)
        for upscale in (False, True):
            start = time.perf_counter()
            result = ocr.ocr_image(canvas, engine=engine, upscale=upscale)
            elapsed = time.perf_counter() - start
            print(
                f"{width}x{height}, {size} px font, upscale={upscale!s:5}: {elapsed:5.2f} s, "
                f"scale {result.scale:.2f}, {len(result.lines)} lines, "
                f"word accuracy {word_accuracy(truth, result.text):.3f}"
            )


if __name__ == "__main__":
    main()

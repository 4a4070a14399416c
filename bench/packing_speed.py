"""Packing speed: a full 256K-token Ministral 3 window, packed token-exactly.

Passages are real manual text (the gnuplot manual's pages, if ../shared is beside the
repository; otherwise varied synthetic text), far more than fits, with a screenshot on
the question and one on a source, and a conversation history. Each run calls
`assistant.packing.pack_context` exactly as chat does. Side by side in the same run, the
floor: one Tekken encode of the final prompt's text (packing must at least count it
once). The packed request is checked against mistral-common's own encoding of it
(`ChatCompletionRequest.from_openai` + `encode_chat_completion`). Goal: < 150 ms.

    .venv/bin/python bench/packing_speed.py [--runs 15] [--pdf PATH]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _setup import SHARED, django_setup, machine

GOAL_MS = 150.0
WINDOW = 256_000


@dataclass(frozen=True)
class Piece:
    """What a Passage reads from a chunk (the bench needs no database)."""

    text: str
    heading: str = ""
    token_count: int = 0
    page: int | None = None


def manual_pages(pdf: Path) -> list[str]:
    if pdf.is_file():
        from pypdf import PdfReader

        pages = [page.extract_text() or "" for page in PdfReader(pdf).pages]
        return [p for p in pages if len(p) > 200]
    rng = random.Random(7)
    words = [
        "printer",
        "proxy",
        "timeout",
        "résumé",
        "日本語",
        "`code()`",
        "{json:",
        "1}",
        "<tag>",
        "error",
        "503",
        "retry",
    ]
    return [" ".join(rng.choice(words) for _ in range(600)) for _ in range(300)]


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 210, 220)).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="measured packs after one warm-up")
    parser.add_argument("--pdf", type=Path, default=SHARED / "corpora/manuals/gnuplot.pdf")
    args = parser.parse_args()
    django_setup()  # retrieval's Passage lives beside Django models

    from assistant.llm.wire import wire_messages
    from assistant.packing import Budget, ImageInput, Turn, pack_context
    from assistant.retrieval import Passage
    from ministral.prompt import Image
    from ministral.tokens import get_counter

    counter = get_counter()
    pages = manual_pages(args.pdf)
    passages = []
    for n, text in enumerate(pages):
        piece = Piece(
            text=text, heading=f"Page {n + 1}", token_count=counter.text(text), page=n + 1
        )
        passages.append(Passage(n, Path(args.pdf).name, (piece,), 1.0 - n / 10_000, (n + 1,)))
    while sum(p.token_count for p in passages) < 2 * WINDOW:  # always more than fits
        passages += passages[: len(pages)]
    screenshot = ImageInput(Image(png(1280, 800), "image/png", 1280, 800), ocr_text="Error 503")
    figure = ImageInput(Image(png(900, 600), "image/png", 900, 600))
    budget = Budget(context_window=WINDOW, max_output_tokens=4096, retrieval=WINDOW)
    kwargs = dict(
        system_prompt="Answer only from the sources and cite them as [n].",
        history=[Turn("user", "How do I plot a file?"), Turn("assistant", "Use plot 'f' [1].")],
        question="How do I set the terminal to PNG and change its size?",
        question_images=[screenshot],
        passages=passages,
        passage_images={0: figure},
        vision=True,
        budget=budget,
        counter=counter,
    )
    packed = pack_context(**kwargs)  # warm-up; also the request that is verified
    times, floors = [], []
    text = "".join(message.plain_text() for message in packed.messages)
    for _ in range(args.runs):
        started = time.perf_counter()
        pack_context(**kwargs)
        times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        counter.text(text)
        floors.append((time.perf_counter() - started) * 1000)

    from standin import count_prompt_tokens

    exact = count_prompt_tokens(wire_messages(packed.messages, dialect="mistral-common"))
    p50, p95 = statistics.median(times), sorted(times)[max(0, int(0.95 * len(times)) - 1)]
    floor = statistics.median(floors)
    print(
        f"Packing benchmark: {len(passages)} candidate passages "
        f"({sum(p.token_count for p in passages):,} tokens), {args.runs} runs after a warm-up"
    )
    print(f"Machine: {machine()}")
    print(
        f"packed {packed.prompt_tokens:,} tokens into a {budget.prompt:,}-token prompt budget "
        f"({len(packed.sources)} sources, {len(packed.images)} images, "
        f"{packed.history_turns} history turns)"
    )
    print(f"mistral-common counts the packed request at {exact:,} tokens: ", end="")
    print("exact" if exact == packed.prompt_tokens else f"MISMATCH ({packed.prompt_tokens:,})")
    print(f"pack_context      p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"one encode floor  p50 {floor:7.1f} ms   (the final prompt's text, tokenized once)")
    print(f"ratio pack/encode: {p50 / floor:.2f}")
    correct = exact == packed.prompt_tokens and packed.prompt_tokens <= budget.prompt
    print(f"Goal p95 < {GOAL_MS:.0f} ms: {'met' if p95 < GOAL_MS else 'NOT met'}")
    sys.exit(0 if correct else 1)  # a missed time goal is a finding, a wrong count a failure


if __name__ == "__main__":
    main()

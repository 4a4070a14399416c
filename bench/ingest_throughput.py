"""Ingest throughput: the whole pipeline against the embedding model's raw encode speed.

Embedding is the floor on a CPU, so the figure that matters is the ratio of pipeline
throughput to `encode` throughput on the very same chunks, measured in one run
(encode, pipeline, encode again; the two encode runs are averaged). Goal: >= 0.85.

    .venv/bin/python bench/ingest_throughput.py [--pdf PATH]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from _setup import SHARED, django_setup, machine

GOAL = 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pdf", type=Path, default=SHARED / "corpora/manuals/gnuplot.pdf")
    args = parser.parse_args()
    django_setup()
    from django.conf import settings

    from ingest.models import Chunk
    from ingest.services import document_create, document_ingest, ingest_tools, kb_get_or_create

    tools = ingest_tools()
    tools.embedder.encode(["warm up"])
    data = args.pdf.read_bytes()

    def encode(texts: list[str]) -> float:
        started = time.perf_counter()
        tools.embedder.encode(texts, batch_size=settings.EMBED_BATCH_SIZE)
        return time.perf_counter() - started

    kb = kb_get_or_create(name="bench")
    # A first pass gives the exact chunk texts the pipeline embeds.
    first = document_create(
        kb=kb, filename="warm.pdf", content=io.BytesIO(data + b"\n%warm"), enqueue=False
    )
    document_ingest(document_id=first.document.pk, owner="bench:0:0", tools=tools)
    texts = [
        f"{c.heading}\n{c.text}" if c.heading else c.text
        for c in Chunk.objects.filter(document=first.document).order_by("ordinal")
    ]
    encode_before = encode(texts)
    document = document_create(
        kb=kb, filename=args.pdf.name, content=io.BytesIO(data), enqueue=False
    ).document
    started = time.perf_counter()
    document = document_ingest(document_id=document.pk, owner="bench:0:0", tools=tools)
    pipeline = time.perf_counter() - started
    encode_after = encode(texts)
    assert document is not None and document.status == "ready", document and document.error
    raw = (encode_before + encode_after) / 2
    chunks, pages = document.chunk_count, document.page_count or 0
    print(f"Ingest benchmark: {args.pdf.name}, {pages} pages, {chunks} chunks")
    print(f"Machine: {machine()}")
    print(f"{'':28}{'seconds':>10}{'pages/s':>10}{'chunks/s':>10}")
    print(
        f"{'pipeline (end to end)':28}{pipeline:10.1f}{pages / pipeline:10.2f}{chunks / pipeline:10.1f}"
    )
    print(f"{'raw encode (same chunks)':28}{raw:10.1f}{'':>10}{chunks / raw:10.1f}")
    ratio = raw / pipeline
    print(f"ratio pipeline/encode throughput: {ratio:.2f}")
    print(f"Goal ratio >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()

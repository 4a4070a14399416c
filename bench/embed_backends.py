"""Embedding backends side by side: torch float32 against the local ONNX int8 build.

On the same texts in one run: encode throughput for chunk-sized texts (about 200 word
pieces, batch 32), single-query latency, cosine agreement with torch's vectors, and
retrieval quality on a BEIR set through Docent's real ingest and retrieval (R@5, MRR@10,
hybrid and dense). Timings are medians of repeated runs, each backend in a process of its
own (as a server runs one); other work on two shared cores shows up in any single run.

Goal (the rule for EMBEDDING_BACKEND's default): onnx-int8 loses less than 0.005 of R@5
and of MRR@10 in hybrid retrieval.

    .venv/bin/python bench/embed_backends.py [--beir DIR] [--repeats N] [--modes hybrid,dense]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _setup import SHARED, django_setup, machine

TOLERANCE = 0.005


def chunk_texts(corpus: Path, embedder, *, count: int, pieces: int) -> list[str]:
    """Texts of about `pieces` word pieces cut from the corpus, `count` of them."""
    words: list[str] = []
    for line in corpus.read_text().splitlines():
        if line.strip():
            words += json.loads(line)["text"].split()
    texts, start, step = [], 0, max(pieces * 2 // 3, 1)  # about 1.5 pieces per word here
    while len(texts) < count and start < len(words):
        end = start + step
        while end < len(words) and embedder.count_tokens([" ".join(words[start:end])])[0] < pieces:
            end += 8
        texts.append(" ".join(words[start:end]))
        start = end
    return (texts * (count // max(len(texts), 1) + 1))[:count]


def _measure_in_child(backend: str, args) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", backend, "--beir", str(args.beir)]
    command += ["--repeats", str(args.repeats), "--texts", str(args.texts)]
    command += ["--data-dir", os.environ["DATA_DIR"]]  # the int8 build made by the parent
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(backend: str, args) -> None:
    """Print one JSON line: median texts/s (batch 32) and median ms per single query."""
    django_setup(args.data_dir)
    from django.conf import settings

    from ingest.pipeline.embed import get_embedder

    embedder = get_embedder(settings.EMBEDDING_MODEL_PATH, backend)
    texts = chunk_texts(args.beir / "corpus.jsonl", embedder, count=args.texts, pieces=200)
    lines = (args.beir / "queries.jsonl").read_text().splitlines()
    questions = [json.loads(line)["text"] for line in lines if line.strip()][:30]
    embedder.encode(texts[:32])  # first passes at each size are slower
    embedder.encode(questions[:5])
    throughput, latency = [], []
    for _ in range(args.repeats):
        begun = time.perf_counter()
        embedder.encode(texts, batch_size=32)
        throughput.append(len(texts) / (time.perf_counter() - begun))
        for question in questions:
            begun = time.perf_counter()
            embedder.encode([question])
            latency.append((time.perf_counter() - begun) * 1000)
    medians = {"throughput": statistics.median(throughput), "latency": statistics.median(latency)}
    print(json.dumps(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--beir", type=Path, default=SHARED / "eval/python-faq")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per backend")
    parser.add_argument("--texts", type=int, default=64, help="chunk-sized texts per run")
    parser.add_argument("--queries", type=int, default=0, help="evaluate on N queries (0: all)")
    parser.add_argument("--docs", type=int, default=0, help="corpus documents (0: all)")
    parser.add_argument(
        "--modes",
        default="hybrid",
        help="retrieval modes to evaluate, e.g. hybrid,dense ('': none)",
    )
    parser.add_argument("--measure", choices=["torch", "onnx-int8"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args)
    modes = [m for m in args.modes.split(",") if m]
    django_setup()
    from django.conf import settings

    from assistant.evaluation import BeirSet, beir_load, evaluation_run
    from assistant.tools import ChatTools
    from ingest.pipeline.embed import get_embedder
    from ingest.services import IngestTools
    from ingest.store import get_store
    from ministral.tokens import get_counter

    started = time.perf_counter()
    embedders = {"torch": get_embedder(settings.EMBEDDING_MODEL_PATH, "torch")}
    loaded = time.perf_counter()
    embedders["onnx-int8"] = get_embedder(settings.EMBEDDING_MODEL_PATH, "onnx-int8")
    built = time.perf_counter()
    torch = embedders["torch"]
    texts = chunk_texts(args.beir / "corpus.jsonl", torch, count=args.texts, pieces=200)
    dataset = beir_load(args.beir)
    if args.queries:
        qrels = {q: dataset.qrels[q] for q in list(dataset.qrels)[: args.queries]}
        dataset = BeirSet(dataset.corpus, dataset.queries, qrels)
    if args.docs:  # the relevant documents first, then others up to --docs
        relevant = {doc for rel in dataset.qrels.values() for doc in rel}
        ids = sorted(dataset.corpus, key=lambda doc: doc not in relevant)[: args.docs]
        corpus = {doc: dataset.corpus[doc] for doc in ids}
        qrels = {q: rel for q, rel in dataset.qrels.items() if rel.keys() <= corpus.keys()}
        dataset = BeirSet(corpus, dataset.queries, qrels)
    questions = [dataset.queries[q] for q in dataset.qrels][:30]

    print(f"Embedding backends: {torch.name} on torch and on ONNX int8, {args.beir.name}")
    print(f"Machine: {machine()}")
    print(
        f"Load: torch {loaded - started:.1f} s; onnx-int8 build and load {built - loaded:.1f} s "
        f"(built once per DATA_DIR)"
    )
    pieces = statistics.median(torch.count_tokens(texts))
    print(
        f"Texts: {len(texts)} of median {pieces:.0f} word pieces, batch 32; {len(questions)} queries"
    )
    # Each backend is timed in a process of its own, as a server runs only one: in one
    # process, onnxruntime's threads and torch's slow each other down after a switch.
    speed = {name: _measure_in_child(name, args) for name in embedders}
    reference = torch.encode(texts)
    reference_q = torch.encode(questions)

    quality = {}
    store = get_store()
    for name, embedder in embedders.items():
        chat = ChatTools(embedder=embedder, store=store, counter=get_counter(), llm=None)
        ingest = IngestTools(embedder=embedder, store=store, count_llm_tokens=get_counter().text)
        for mode in modes:
            quality[name, mode] = evaluation_run(
                dataset=dataset, chat_tools=chat, ingest_tools=ingest, mode=mode, budgets=()
            )

    header = f"{'':34}{'torch':>12}{'onnx-int8':>12}{'ratio':>9}"
    print(header)
    t, q = (speed[n]["throughput"] for n in embedders)
    print(f"{'encode, texts/s (median)':34}{t:12.1f}{q:12.1f}{q / t:8.2f}x")
    t, q = (speed[n]["latency"] for n in embedders)
    print(f"{'query latency, ms (median)':34}{t:12.2f}{q:12.2f}{t / q:8.2f}x")
    for label, ref, sample in (("chunks", reference, texts), ("queries", reference_q, questions)):
        cosine = (embedders["onnx-int8"].encode(sample) * ref).sum(axis=1)
        print(f"cosine to torch, {label}: min {cosine.min():.4f}, mean {np.mean(cosine):.4f}")
    for mode in modes:
        a, b = quality["torch", mode], quality["onnx-int8", mode]
        print(
            f"{mode + ' R@5 / MRR@10':34}{a.recall_at_5:6.3f}/{a.mrr_at_10:5.3f}"
            f"{b.recall_at_5:6.3f}/{b.mrr_at_10:5.3f}"
            f"  ({b.recall_at_5 - a.recall_at_5:+.3f} / {b.mrr_at_10 - a.mrr_at_10:+.3f})"
        )
    if "hybrid" not in modes:
        print("Goal: not measured in this run (hybrid retrieval was not evaluated)")
        return
    a, b = quality["torch", "hybrid"], quality["onnx-int8", "hybrid"]
    held = a.recall_at_5 - b.recall_at_5 < TOLERANCE and a.mrr_at_10 - b.mrr_at_10 < TOLERANCE
    print(
        f"Goal: onnx-int8 within {TOLERANCE} of torch on hybrid R@5 and MRR@10 "
        f"({a.queries} queries): {'met' if held else 'not met'}"
    )


if __name__ == "__main__":
    main()

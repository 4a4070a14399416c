"""Query latency: the real retrieval path (embed + dense + lexical + fuse) at growing sizes.

For each size, a knowledge base of synthetic chunks is built in its own DATA_DIR (its own
SQLite file with its FTS5 index, its own Chroma server), then `--queries` questions go
through `assistant.retrieval.retrieve` exactly as chat calls it (hybrid, 100 candidates
from each list). Each query's time is split into its parts, measured inside the same call:

  embed    the embedding model encodes the question
  dense    Chroma's HNSW query (`VectorStore.query`)
  lexical  BM25 over the full-text index (`chunks_search_lexical`)
  fuse+db  the rest: loading the <=200 candidate rows and fusing the two lists

Chunks: ~150 words of sentences drawn from the embedding model's own (frequency-ordered)
vocabulary with Zipf weights, so BM25 faces realistic posting lists; vectors are random
unit vectors (the hardest case for HNSW: no clusters). Goal: p95 < 50 ms at 100k chunks.

    .venv/bin/python bench/query_latency.py [--sizes 10000,100000,1000000] [--queries 100]
        [--data-dir DIR]   # keep the prepared knowledge bases in DIR/chunks-<N> and reuse them

Loading is the slow part (about 1.6k chunks/s on 2 cores, Chroma's HNSW inserts bound it):
~10 s for 10k, ~70 s for 100k, 12-15 min for 1M. With --data-dir a load resumes where it
stopped and a finished one is reused, so the 1M set costs that once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _setup import django_setup, machine

CHUNKS_PER_DOCUMENT = 500
WORDS_PER_CHUNK = (110, 190)
SENTENCE_WORDS = (6, 22)
WARMUP_QUERIES = 5
SEED = 20251123
FORMAT_VERSION = 1  # bump when the synthetic data changes, so old --data-dir sets are rebuilt
GOAL_MS, GOAL_SIZE = 50.0, 100_000
PARTS = ("embed", "dense", "lexical", "fuse+db")


# --- synthetic text ---------------------------------------------------------------------------


class Vocabulary:
    """English words in frequency order (all-MiniLM-L6-v2's vocab.txt), sampled Zipf-style."""

    def __init__(self) -> None:
        from ingest.pipeline.embed import default_model_path

        lines = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
        start = lines.index("the")
        words = [w for w in lines[start:] if w.isascii() and w.isalpha() and len(w) > 1]
        self.words = np.array(words, dtype=object)
        weights = 1.0 / (np.arange(len(words)) + 2.7)  # Zipf-Mandelbrot, s = 1
        self.cdf = np.cumsum(weights) / weights.sum()
        # Sentence forms: plain, Capitalised (sentence start), with a full stop (sentence end).
        capitalised = np.array([w.capitalize() for w in words], dtype=object)
        stopped = np.array([w + "." for w in words], dtype=object)
        self.forms = np.stack([self.words, capitalised, stopped])

    def sample(self, rng: np.random.Generator, n: int, *, skip: int = 0) -> np.ndarray:
        low = self.cdf[skip - 1] if skip else 0.0
        return np.searchsorted(self.cdf, rng.uniform(low, 1.0, n)).clip(0, len(self.words) - 1)

    def chunk_texts(self, rng: np.random.Generator, n: int) -> list[str]:
        lengths = rng.integers(*WORDS_PER_CHUNK, size=n, endpoint=True)
        index = self.sample(rng, int(lengths.sum()))
        form = np.zeros(len(index), dtype=np.int8)
        texts = []
        start = 0
        for length in lengths:
            end = start + int(length)
            cut = start
            while cut < end:  # sentences: Capitalised first word, full stop on the last
                form[cut] = 1
                cut = min(end, cut + int(rng.integers(*SENTENCE_WORDS)))
                form[cut - 1] = 2
            texts.append(" ".join(self.forms[form[start:end], index[start:end]].tolist()))
            start = end
        return texts

    def question(self, rng: np.random.Generator) -> str:
        """A question with 3-6 content words (stopword templates; the top 100 words skipped)."""
        words = self.words[self.sample(rng, int(rng.integers(3, 7)), skip=100)].tolist()
        template = [
            "How do I {} the {} when {}?",
            "Why does {} fail with {} after {}?",
            "What is the {} for {} and {}?",
            "Can I {} {} without {}?",
        ][int(rng.integers(4))]
        head = template.format(*words[:3])
        return head if len(words) == 3 else f"{head[:-1]} {' '.join(words[3:])}?"


def unit_vectors(rng: np.random.Generator, n: int, dimension: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


# --- loading one size (runs in a child process: one Django setup per DATA_DIR) ----------------


def load(size: int, *, dimension: int, progress_every: float = 5.0) -> dict:
    """Fill the knowledge base "bench-<size>" to `size` chunks; resumes a partial load."""
    from django.db import transaction

    from ingest.models import Chunk, Document, DocumentStatus
    from ingest.services import kb_get_or_create
    from ingest.store import get_store

    kb = kb_get_or_create(name=f"bench-{size}")
    store = get_store()
    # A document becomes "ready" only once its rows and its vectors are both written, so
    # anything else is the debris of an interrupted load: remove it and start from there.
    for document in Document.objects.filter(kb=kb).exclude(status=DocumentStatus.READY):
        store.delete_document(collection=kb.collection_name, document_id=document.pk)
        document.delete()
    done = Chunk.objects.filter(kb=kb).count()
    already = done
    vocabulary = Vocabulary()
    started = last = time.monotonic()
    spent = {"generate": 0.0, "sqlite": 0.0, "waiting for chroma": 0.0}
    pending: deque = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="chroma-upsert") as upserts:

        def finish_oldest() -> None:
            document_id, future = pending.popleft()
            mark = time.monotonic()
            future.result()
            spent["waiting for chroma"] += time.monotonic() - mark
            Document.objects.filter(pk=document_id).update(status=DocumentStatus.READY)

        while done < size:
            index = done // CHUNKS_PER_DOCUMENT
            n = min(CHUNKS_PER_DOCUMENT, size - done)
            mark = time.monotonic()
            rng = np.random.default_rng([SEED, index])
            texts = vocabulary.chunk_texts(rng, n)
            vectors = unit_vectors(rng, n, dimension)
            spent["generate"] += time.monotonic() - mark
            mark = time.monotonic()
            with transaction.atomic():
                document = Document.objects.create(
                    kb=kb,
                    filename=f"synthetic-{index:05d}.pdf",
                    file="",
                    sha256=hashlib.sha256(f"{SEED}:{index}".encode()).hexdigest(),
                    kind="pdf",
                    status=DocumentStatus.PROCESSING,
                    stage="ready",
                    progress=100,
                    generation=1,
                    chunk_count=n,
                    page_count=n // 4 + 1,
                )
                ids = [f"d{document.pk}g1c{o}" for o in range(n)]
                Chunk.objects.bulk_create(
                    (
                        Chunk(
                            kb=kb,
                            document=document,
                            vector_id=ids[o],
                            ordinal=o,
                            page=o // 4 + 1,
                            heading=f"Section {o // 20 + 1}" if o % 20 == 0 else "",
                            text=text,
                            token_count=len(text) // 4,
                        )
                        for o, text in enumerate(texts)
                    ),
                    batch_size=500,
                )
            spent["sqlite"] += time.monotonic() - mark
            metadatas = [{"doc": document.pk, "gen": 1}] * n
            pending.append(
                (
                    document.pk,
                    upserts.submit(
                        store.upsert,
                        collection=kb.collection_name,
                        ids=ids,
                        vectors=vectors,
                        metadatas=metadatas,
                    ),
                )
            )
            while len(pending) > 2:
                finish_oldest()
            done += n
            now = time.monotonic()
            if now - last >= progress_every or done >= size:
                last = now
                rate = (done - already) / (now - started)
                eta = (size - done) / rate if rate else 0
                print(
                    f"  [{size:,}] loaded {done:,}/{size:,} chunks, {rate:,.0f}/s, "
                    f"about {eta / 60:.1f} min left",
                    file=sys.stderr,
                    flush=True,
                )
        while pending:
            finish_oldest()
    seconds = time.monotonic() - started
    if done > already:
        where = ", ".join(f"{k} {v:.0f} s" for k, v in spent.items())
        print(f"  [{size:,}] load took {seconds:.0f} s: {where}", file=sys.stderr, flush=True)
    in_db = Chunk.objects.filter(kb=kb).count()
    in_chroma = store.count(collection=kb.collection_name)
    if in_db != size or in_chroma != size:
        raise SystemExit(
            f"load went wrong: {in_db:,} chunk rows, {in_chroma:,} vectors, not {size:,}"
        )
    return {"loaded": done - already, "load_seconds": seconds}


# --- measuring --------------------------------------------------------------------------------


class _Timed:
    """Wraps one callable and adds its duration to `times[part]`."""

    def __init__(self, fn, part: str, times: dict[str, float]) -> None:
        self.fn, self.part, self.times = fn, part, times

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times[self.part] += time.perf_counter() - started


class _TimedEmbedder:
    def __init__(self, embedder, times: dict[str, float]) -> None:
        self.encode = _Timed(embedder.encode, "embed", times)


class _TimedStore:
    def __init__(self, store, times: dict[str, float]) -> None:
        self.query = _Timed(store.query, "dense", times)


def measure(size: int, queries: int) -> dict:
    """Run `queries` questions through retrieve(); per-query totals and parts, in ms."""
    from django.conf import settings

    import assistant.retrieval as retrieval
    from ingest.models import KnowledgeBase
    from ingest.pipeline.embed import get_embedder
    from ingest.store import get_store

    kb = KnowledgeBase.objects.get(name=f"bench-{size}")
    times: dict[str, float] = dict.fromkeys(PARTS, 0.0)
    embedder = _TimedEmbedder(
        get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND), times
    )
    store = _TimedStore(get_store(), times)
    retrieval.chunks_search_lexical = _Timed(retrieval.chunks_search_lexical, "lexical", times)
    vocabulary = Vocabulary()
    rng = np.random.default_rng([SEED, 1])
    questions = [vocabulary.question(rng) for _ in range(WARMUP_QUERIES + queries)]
    rows = []
    hits = []
    for n, question in enumerate(questions):
        for part in PARTS:
            times[part] = 0.0
        started = time.perf_counter()
        found = retrieval.retrieve(
            kb=kb,
            query=question,
            embedder=embedder,
            store=store,
            limit=100,
            config=retrieval.RetrievalConfig(),
        )
        total = time.perf_counter() - started
        if n < WARMUP_QUERIES:
            continue
        known = sum(times[p] for p in PARTS[:3])
        rows.append({"total": total * 1000, **{p: times[p] * 1000 for p in PARTS[:3]}})
        rows[-1]["fuse+db"] = (total - known) * 1000
        hits.append(len(found))
    return {
        "rows": rows,
        "hits": statistics.mean(hits) if hits else 0,
        "example": questions[WARMUP_QUERIES],
    }


def run_one(size: int, queries: int, data_dir: Path) -> None:
    """Child process: load (or reuse) one size in its own DATA_DIR, measure, print JSON."""
    data_dir.mkdir(parents=True, exist_ok=True)
    django_setup(str(data_dir))
    from django.conf import settings

    from ingest.pipeline.embed import get_embedder

    marker = data_dir / "bench-ready.json"
    expected = {"chunks": size, "version": FORMAT_VERSION, "seed": SEED}
    result: dict = {"size": size, "reused": False, "loaded": 0, "load_seconds": 0.0}
    if marker.exists() and json.loads(marker.read_text()) == expected:
        result["reused"] = True
    else:
        dimension = get_embedder(
            settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND
        ).dimension
        result.update(load(size, dimension=dimension))
        marker.write_text(json.dumps(expected))
    result.update(measure(size, queries))
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent: one child per size, then the table -------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(results: list[dict], queries: int) -> None:
    print(
        f"Query latency benchmark: retrieve() hybrid (embed + dense + lexical + fuse), "
        f"{queries} queries per size after {WARMUP_QUERIES} warm-up"
    )
    print(f"Machine: {machine()}")
    head = f"{'chunks':>10} {'p50 ms':>8} {'p95 ms':>8} |"
    head += "".join(f"{p + ' p50':>13}" for p in PARTS) + f" | {'load':>12}"
    print(head)
    for r in results:
        rows = r["rows"]
        total = [x["total"] for x in rows]
        line = f"{r['size']:>10,} {percentile(total, 50):8.1f} {percentile(total, 95):8.1f} |"
        for part in PARTS:
            line += f"{percentile([x[part] for x in rows], 50):13.1f}"
        load = "reused" if r["reused"] else f"{r['load_seconds']:.0f} s"
        print(line + f" | {load:>12}")
    print("p95 of each part (ms):")
    for r in results:
        rows = r["rows"]
        parts = "  ".join(f"{p} {percentile([x[p] for x in rows], 95):.1f}" for p in PARTS)
        print(f"  {r['size']:>10,}: {parts}")
    print("Ratios (same run):")
    for r in results:
        rows = r["rows"]
        total = statistics.mean(x["total"] for x in rows)
        shares = "  ".join(
            f"{p} {100 * statistics.mean(x[p] for x in rows) / total:.0f}%" for p in PARTS
        )
        embed = percentile([x["embed"] for x in rows], 50)
        ratio = percentile([x["total"] for x in rows], 50) / embed if embed else float("nan")
        print(f"  {r['size']:>10,}: share of time {shares}; p50 total/embed {ratio:.2f}")
    base = results[0]
    base_p95 = percentile([x["total"] for x in base["rows"]], 95)
    for r in results[1:]:
        p95 = percentile([x["total"] for x in r["rows"]], 95)
        print(
            f"  p95 at {r['size']:,} / p95 at {base['size']:,} chunks: {p95 / base_p95:.2f}  "
            f"({r['size'] / base['size']:.0f}x the chunks)"
        )
    hits = ", ".join(f"{r['hits']:.0f}" for r in results)
    print(f"Mean hits per query: {hits}")
    print(f"Example question: {base['example']!r}")
    goal = next((r for r in results if r["size"] == GOAL_SIZE), None)
    if goal is None:
        print(f"Goal p95 < {GOAL_MS:.0f} ms at {GOAL_SIZE:,} chunks: not measured in this run")
    else:
        p95 = percentile([x["total"] for x in goal["rows"]], 95)
        verdict = "met" if p95 < GOAL_MS else "MISSED"
        print(f"Goal p95 < {GOAL_MS:.0f} ms at {GOAL_SIZE:,} chunks: {verdict} (p95 {p95:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="chunk counts, a,b,c")
    parser.add_argument("--queries", type=int, default=100, help="measured queries per size")
    parser.add_argument("--data-dir", type=Path, help="keep and reuse the prepared sets here")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)  # internal: the child
    args = parser.parse_args()
    if args.one_size:
        run_one(args.one_size, args.queries, args.data_dir)
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.queries < 1:
        parser.error("sizes and queries must be positive")
    root = (
        args.data_dir.resolve() if args.data_dir else Path(tempfile.mkdtemp(prefix="docent-bench-"))
    )
    env = {
        **os.environ,
        "DOCENT_ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
    }
    for name in ("DATABASE_URL", "CHROMA_URL", "DATA_DIR"):
        env.pop(name, None)  # synthetic data goes to its own SQLite file and Chroma, nowhere else
    results = []
    try:
        for size in sizes:
            print(
                f"Preparing and querying {size:,} chunks in {root / f'chunks-{size}'}",
                file=sys.stderr,
                flush=True,
            )
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one-size",
                    str(size),
                    "--queries",
                    str(args.queries),
                    "--data-dir",
                    str(root / f"chunks-{size}"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            lines = [x for x in child.stdout.splitlines() if x.startswith("RESULT ")]
            if child.returncode or not lines:
                sys.stdout.write(child.stdout)
                raise SystemExit(f"the {size:,}-chunk run failed (exit {child.returncode})")
            results.append(json.loads(lines[-1][7:]))
    finally:
        if not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    report(results, args.queries)


if __name__ == "__main__":
    main()

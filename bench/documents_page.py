"""Documents page at scale: the page and its list API over a knowledge base of 20,000 documents.

A throwaway DATA_DIR gets one knowledge base with `--documents` Document rows (bulk-created:
mixed kinds, sizes, statuses and uploaders) and, for one document in `--chunk-every`, three
chunks of text (so the content search has a real full-text index to search). Then, each
`--runs` times through Django's whole stack in process (middleware, session, permission
checks, JSON rendering; no network), signed in as staff:

  page         GET /kb/<slug>/documents/ (the HTML the browser loads first)
  first page   GET /api/kbs/<slug>/documents (50 newest)
  sort         ... ?sort=name&offset=5000 (a page deep into a name sort)
  search       ... ?q=<a word in some documents' text> (names, errors and text)
  status       ... ?status=failed

Goal: p95 < 300 ms for each.

    .venv/bin/python bench/documents_page.py [--documents 20000] [--runs 30] [--chunk-every 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from _measure import percentile
from _setup import django_setup, machine

GOAL_MS = 300.0
KINDS = ("pdf", "docx", "markdown", "text", "html", "image")
WORDS = ("router", "firmware", "printer", "invoice", "gateway", "battery", "warranty", "backup")


def build(documents: int, chunk_every: int):
    """The knowledge base with its documents and chunks, and a signed-in staff client."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from ingest.models import Chunk, Document
    from ingest.services import kb_get_or_create

    rng = random.Random(20261202)
    users = get_user_model()
    staff = users.objects.create_user("bench-staff", is_staff=True)
    uploaders = [users.objects.create_user(f"uploader-{i}") for i in range(5)]
    kb = kb_get_or_create(name="Bench documents")
    rows = []
    for i in range(documents):
        failed = rng.random() < 0.05
        rows.append(
            Document(
                kb=kb,
                filename=f"{rng.choice(WORDS)}-manual-{i:06d}.{rng.choice(['pdf', 'md'])}",
                sha256=f"{i:064x}",
                kind=rng.choice(KINDS),
                size_bytes=rng.randint(1_000, 90_000_000),
                page_count=rng.randint(1, 400),
                status="failed" if failed else "ready",
                stage="failed" if failed else "ready",
                error="Unsupported file type: the content is application/zip." if failed else "",
                chunk_count=rng.randint(1, 900),
                uploaded_by=rng.choice([None, *uploaders]),
            )
        )
    created = Document.objects.bulk_create(rows, batch_size=2000)
    chunks = [
        Chunk(
            kb=kb,
            document=document,
            vector_id=f"bench-{document.pk}-{n}",
            ordinal=n,
            text=" ".join(rng.choice(WORDS) for _ in range(60)) + f" part {n} of {document.pk}",
            token_count=80,
        )
        for document in created[::chunk_every]
        for n in range(3)
    ]
    Chunk.objects.bulk_create(chunks, batch_size=2000)
    client = Client(SERVER_NAME="localhost")
    client.force_login(staff)
    return kb, client, len(chunks)


def measure(client, url: str, runs: int) -> tuple[list[float], int]:
    """Milliseconds per request (one warm-up first), and the `total` of the last answer."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    total = response.json()["total"] if url.startswith("/api/") else -1
    return times, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--chunk-every", type=int, default=10)
    args = parser.parse_args()
    django_setup()
    from django.conf import settings

    settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # served by whitenoise; empty here
    print(f"Machine: {machine()}")
    started = time.monotonic()
    kb, client, chunk_total = build(args.documents, args.chunk_every)
    print(
        f"Built {args.documents:,} documents and {chunk_total:,} chunks "
        f"in {time.monotonic() - started:.1f} s"
    )
    api = f"/api/kbs/{kb.slug}/documents"
    cases = {
        "page": f"/kb/{kb.slug}/documents/",
        "first page": api,
        "sort": f"{api}?sort=name&offset={min(5000, args.documents // 2)}",
        "search": f"{api}?q=firmware",
        "status": f"{api}?status=failed",
    }
    print(f"{'call':<12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  matching")
    worst = 0.0
    for name, url in cases.items():
        times, total = measure(client, url, args.runs)
        p95 = percentile(times, 95)
        worst = max(worst, p95)
        shown = f"{total:,}" if total >= 0 else "-"
        print(f"{name:<12} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f}  {shown}")
    verdict = "met" if worst < GOAL_MS else "NOT met"
    print(f"Goal: p95 < {GOAL_MS:.0f} ms for each call at {args.documents:,} documents: {verdict}")
    print(f"      (worst p95 {worst:.1f} ms)")
    sys.exit(0)


if __name__ == "__main__":
    main()

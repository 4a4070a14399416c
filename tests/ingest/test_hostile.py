"""A corpus of hostile files through the real worker: each fails alone, with a clear reason.

The worker survives, the good documents beside them are indexed, and the worker's
memory and the time per document stay bounded.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from ingest.models import Chunk, Document
from ingest.services import document_create
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LIMITS = {
    "INGEST_TIMEOUT_SECONDS": "15",
    "INGEST_MEMORY_LIMIT_MB": "1536",
    "MAX_PDF_PAGES": "500",
    "MAX_EXTRACTED_CHARS": "2000000",
    "MAX_UPLOAD_BYTES": "20000000",
}

HOSTILE = {
    "truncated.pdf": (
        lambda: factories.text_pdf(["x" * 3000] * 3)[:600],
        r"damaged or truncated|no pages",
    ),
    "looping.pdf": (factories.looping_pdf, r"page tree is unreadable|cyclic|loop"),
    "millions-of-pages.pdf": (factories.huge_page_count_pdf, r"5,000,000 pages; the limit is 500"),
    "nested.pdf": (factories.deeply_nested_pdf, r"damaged|nested too deeply|loop"),
    "garbage.pdf": (
        lambda: b"%PDF-1.7\n" + bytes(range(256)) * 200,
        r"damaged|no pages|could not be read",
    ),
    "bomb.png": (factories.bomb_png, r"decompression bomb"),
    "bomb.gif": (factories.gif_bomb, r"decompression bomb"),
    "zip-bomb.docx": (factories.zip_bomb_docx, r"zip bomb"),
    "program.pdf": (lambda: b"\x7fELF\x02\x01\x01" + bytes(4000), r"Unsupported file type"),
    "archive.docx": (lambda: _zip({"notes.txt": b"hello"}), r"ZIP archive, not a document"),
    "huge.txt": (lambda: b"lorem ipsum " * 250_000, r"characters of text; the limit is 2,000,000"),
    "empty.md": (lambda: b"", r"empty"),
}
GOOD = {
    "../../etc/cron.d/evil.md": b"# Maintenance\n\nThe boiler is serviced every April.",
    "broken-xref.pdf": None,  # recoverable damage: readers rebuild the xref, and so do we
    "fine.md": b"# Parking\n\nVisitors park on level 2.",
}


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hostile_files_fail_alone_and_the_worker_survives(worker_factory, kb, store):
    good = {
        **GOOD,
        "broken-xref.pdf": factories.broken_xref_pdf(["Recovered text about invoices."]),
    }
    ids = {}
    for name, (make, _) in HOSTILE.items():
        ids[name] = document_create(kb=kb, filename=name, content=io.BytesIO(make())).document.pk
    for name, data in good.items():
        ids[name] = document_create(kb=kb, filename=name, content=io.BytesIO(data)).document.pk
    worker = worker_factory(**LIMITS)
    pid = worker.proc.pid
    peak = _rss_mb(pid)
    started = time.monotonic()
    while time.monotonic() - started < 300:
        peak = max(peak, _rss_mb(pid))
        if not Document.objects.filter(status__in=["queued", "processing"]).exists():
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert worker.proc.poll() is None, "the worker died"
    documents = {d.pk: d for d in Document.objects.all()}
    import re

    for name, (_, reason) in HOSTILE.items():
        document = documents[ids[name]]
        assert document.status == "failed", (name, document.status, document.error)
        assert re.search(reason, document.error), (name, document.error)
        assert not Chunk.objects.filter(document=document).exists()
    for name in good:
        document = documents[ids[name]]
        assert document.status == "ready", (name, document.error)
    assert documents[ids["../../etc/cron.d/evil.md"]].filename == "evil.md"
    assert peak < 2500, f"worker RSS peaked at {peak:.0f} MB"
    assert elapsed < 240, f"took {elapsed:.0f} s"
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert store.ids(collection=kb.collection_name) == rows
    print(
        f"{len(HOSTILE)} hostile + {len(good)} good files in {elapsed:.1f} s; worker RSS peak {peak:.0f} MB"
    )

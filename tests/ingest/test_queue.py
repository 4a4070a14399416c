"""The queue as the API shows it: lanes, positions, estimates, Retry and Cancel."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assistant.keys import api_key_create
from ingest.models import Document
from ingest.services import document_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(kb):
    _, token = api_key_create(name="writer", knowledge_bases=[kb], can_write=True)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def queue(kb, name: str, size: int) -> Document:
    data = f"# {name} {uuid.uuid4()}\n\n".encode() + b"words and more words. " * (size // 22)
    return document_create(kb=kb, filename=name, content=io.BytesIO(data)).document


def measured(kb, *, size: int, seconds: float) -> Document:
    """A document that finished in `seconds`: what the estimates are measured on."""
    document = queue(kb, f"done-{uuid.uuid4()}.md", size)
    finished = timezone.now()
    Document.objects.filter(pk=document.pk).update(
        status="ready",
        stage="ready",
        started_at=finished - timedelta(seconds=seconds),
        finished_at=finished,
    )
    return document


def test_small_files_are_queued_ahead_of_large_ones_with_estimates(kb, api, settings):
    settings.INGEST_SMALL_BYTES = 100_000
    large = queue(kb, "large.md", 400_000)
    first_small = queue(kb, "small-1.md", 20_000)
    second_small = queue(kb, "small-2.md", 20_000)
    rows = {row["id"]: row for row in api.get(f"/api/kbs/{kb.slug}/documents").json()["items"]}
    positions = [rows[d.pk]["queue_position"] for d in (first_small, second_small, large)]
    assert positions == [1, 2, 3]  # the order workers take them: small lane first
    assert all(rows[d.pk]["eta_seconds"] is None for d in (large, first_small))  # unmeasured
    measured(kb, size=100_000, seconds=10)
    rows = {row["id"]: row for row in api.get(f"/api/kbs/{kb.slug}/documents").json()["items"]}
    etas = [rows[d.pk]["eta_seconds"] for d in (first_small, second_small, large)]
    assert etas[0] is not None and 0 < etas[0] < etas[1] < etas[2]
    assert rows[large.pk]["progress_detail"] == "" and rows[large.pk]["retryable"] is False


def test_the_list_costs_the_same_queries_for_three_documents_or_thirty(kb, api, settings):
    settings.INGEST_SMALL_BYTES = 100_000
    measured(kb, size=50_000, seconds=5)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/api/kbs/{kb.slug}/documents").status_code == 200
        return len(captured)

    for n in range(3):
        queue(kb, f"a-{n}.md", 1_000)
    queries()  # the first request of a key also records when it was last used
    few = queries()
    for n in range(27):
        queue(kb, f"b-{n}.md", 1_000)
    assert queries() == few


def test_retry_is_offered_only_when_it_can_work_and_refusals_are_in_words(kb, api):
    refused = document_create(kb=kb, filename="empty.pdf", content=io.BytesIO(b"")).document
    row = api.get(f"/api/documents/{refused.pk}").json()
    assert (row["status"], row["retryable"], row["error"]) == (
        "failed",
        False,
        "This file is empty.",
    )
    answer = api.post(f"/api/documents/{refused.pk}/reindex")
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        "This upload was refused when it arrived, so there is nothing to re-index."
    )


def test_cancel_a_queued_document_then_reindex_it(kb, api):
    document = queue(kb, "wait.md", 2_000)
    cancelled = api.post(f"/api/documents/{document.pk}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["error"], body["retryable"]) == (
        "failed",
        "Cancelled. Re-index to start again.",
        True,
    )
    assert body["queue_position"] is None and body["eta_seconds"] is None
    again = api.post(f"/api/documents/{document.pk}/cancel")
    assert again.status_code == 409 and "waiting or being indexed" in again.json()["detail"]
    assert api.post(f"/api/documents/{document.pk}/reindex").json()["status"] == "queued"


def test_a_small_document_queued_after_a_large_one_is_taken_by_the_small_lane(kb, settings):
    """Before: one queue, taken in order, so a 36 KB file waited for a 117-page PDF."""
    from django_tasks_db.management.commands.db_worker import Worker

    settings.INGEST_SMALL_BYTES = 100_000
    large = queue(kb, "large.md", 150_000)
    small = queue(kb, "small.md", 3_000)

    def run(lanes: list[str], **options) -> None:
        Worker(
            queue_names=lanes,
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            worker_id=f"test-{uuid.uuid4().hex[:8]}",
            excluded_queue_names=[],
            **{"max_tasks": None, **options},
        ).run()

    run(["small"])  # the small-lane worker: it never touches the large file
    small.refresh_from_db()
    large.refresh_from_db()
    assert (small.status, large.status) == ("ready", "queued")
    other_small = queue(kb, "small-2.md", 3_000)
    run(["small", "default"], max_tasks=1)  # a worker on both lanes takes small ones first
    other_small.refresh_from_db()
    large.refresh_from_db()
    assert (other_small.status, large.status) == ("ready", "queued")

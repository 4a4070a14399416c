"""A document changes state only through the lifecycle, and only for its lease holder."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import pytest

from ingest.models import Document
from ingest.services import document_create
from ingest.services.lifecycle import (
    document_claim,
    document_lease_extend,
    document_mark_failed,
    document_mark_ready,
    document_release,
    document_requeue,
    lease_owner_alive,
    worker_identity,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(kb):
    return document_create(
        kb=kb, filename="a.md", content=io.BytesIO(b"# A\n\ntext"), enqueue=False
    ).document


def test_one_claim_wins_and_counts_the_attempt(queued):
    mine = document_claim(document_id=queued.pk, owner="w1")
    assert mine is not None and (mine.status, mine.stage, mine.attempts) == (
        "processing",
        "extracting",
        1,
    )
    assert document_claim(document_id=queued.pk, owner="w2") is None  # the lease is live


def test_only_the_lease_holder_moves_a_document(queued):
    document_claim(document_id=queued.pk, owner="w1")
    assert not document_lease_extend(
        document_id=queued.pk, owner="w2", stage="embedding", progress=50
    )
    assert not document_mark_failed(
        document_id=queued.pk, owner="w2", message="no", failure="interrupted"
    )
    assert document_lease_extend(document_id=queued.pk, owner="w1", stage="embedding", progress=50)
    details = {"warnings": [], "title": ""}
    assert document_mark_ready(
        document_id=queued.pk,
        owner="w1",
        generation=1,
        chunk_count=3,
        page_count=None,
        details=details,
    )
    done = Document.objects.get(pk=queued.pk)
    assert (done.status, done.progress, done.generation, done.lease_owner) == ("ready", 100, 1, "")


def test_release_expires_the_lease_for_recovery_and_requeue_resets_it(queued):
    document_claim(document_id=queued.pk, owner="w1")
    document_release(document_id=queued.pk, owner="w1", message="Chroma is down")
    assert document_claim(document_id=queued.pk, owner="w2") is not None  # expired: claimable
    assert not document_requeue(document_id=queued.pk, from_owner="w1")  # w1 lost it
    assert document_requeue(document_id=queued.pk, from_owner="w2", message="retrying")
    again = Document.objects.get(pk=queued.pk)
    assert (again.status, again.error, again.attempts) == ("queued", "retrying", 2)
    assert document_requeue(document_id=queued.pk, fresh=True)
    assert Document.objects.get(pk=queued.pk).attempts == 0


def test_a_dead_local_worker_is_recognised_at_once():
    assert lease_owner_alive(worker_identity())
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not lease_owner_alive(
        f"{socket.gethostname()}:{child.stdout.strip()}:0"
    )  # it has exited
    assert lease_owner_alive("another-host:1:1")  # only expiry can tell for other hosts

"""A knowledge base's match threshold comes from its own vectors, and questions obey it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from assistant.context import context_pack
from assistant.tools import ChatTools
from ingest.models import KnowledgeBase
from ingest.services import IngestTools, document_create, document_ingest, kb_get_or_create
from ingest.services.calibration import (
    MATCH_CEILING,
    MATCH_DEFAULT,
    MATCH_FLOOR,
    kb_calibrate,
    kb_match_threshold,
)
from ministral.tokens import get_counter
from tests.fakes import HashEmbedder, MemoryStore

pytestmark = pytest.mark.django_db(transaction=True)

TOPICS = ["printer paper tray jam", "router firmware amber light", "invoice payment due date"]


@pytest.fixture
def store():
    return MemoryStore()


def fill(kb, store, documents: int, paragraphs: int) -> None:
    tools = IngestTools(embedder=HashEmbedder(), store=store, count_llm_tokens=get_counter().text)
    for d in range(documents):
        words = TOPICS[d % len(TOPICS)].split()
        body = "\n\n".join(
            f"## Part {p}\n\n" + " ".join(words[(p + i) % len(words)] for i in range(60)) + f" w{p}"
            for p in range(paragraphs)
        )
        document = document_create(
            kb=kb, filename=f"doc{d}.md", content=io.BytesIO(body.encode()), enqueue=False
        ).document
        assert (
            document_ingest(document_id=document.pk, owner="t:1:1", tools=tools).status == "ready"
        )


def test_a_new_knowledge_base_uses_the_default_until_it_has_passages(store):
    kb = kb_get_or_create(name="Empty")
    assert kb_match_threshold(kb=kb) == MATCH_DEFAULT
    assert kb_calibrate(kb=kb, store=store) is None  # nothing to measure
    assert kb_match_threshold(kb=kb) == MATCH_DEFAULT


def test_indexing_calibrates_from_the_knowledge_bases_own_vectors(store):
    kb = kb_get_or_create(name="Manuals")
    fill(kb, store, documents=3, paragraphs=10)
    kb.refresh_from_db()
    assert kb.match_calibrated_chunks >= 20  # the worker calibrated after indexing
    assert MATCH_FLOOR <= kb.match_threshold <= MATCH_CEILING
    # Computed from the stored vectors: recomputing gives the same bar.
    assert kb_calibrate(kb=kb, store=store) == kb.match_threshold


def test_questions_below_the_bar_get_no_sources(store):
    kb = kb_get_or_create(name="Manuals")
    fill(kb, store, documents=2, paragraphs=4)
    tools = ChatTools(embedder=HashEmbedder(), store=store, counter=get_counter(), llm=None)

    def pack(question: str):
        kb.refresh_from_db()
        return context_pack(
            kb=kb,
            query=question,
            question=question,
            history=[],
            screenshots=[],
            info=None,
            tools=tools,
            max_output_tokens=0,
        )

    assert pack("printer paper tray jam").matched
    KnowledgeBase.objects.filter(pk=kb.pk).update(match_threshold=1.01)  # nothing can reach it
    refused = pack("printer paper tray jam")
    assert not refused.matched and refused.sources == ()
    assert refused.nearest_documents[0] in {"doc0.md", "doc1.md"}


def test_the_threshold_is_the_pairs_quantile_within_its_band():
    from ingest.services.calibration import _threshold

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)  # pairs' 0.9 quantile: ~0.33
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sample = [(f"v{i}", i % 3, i) for i in range(60)]
    found = {f"v{i}": vectors[i] for i in range(60)}
    value = _threshold(sample, found)
    sims = vectors @ vectors.T
    cross = [sims[i, j] for i in range(60) for j in range(i + 1, 60) if i % 3 != j % 3]
    expected = float(np.quantile(cross, 0.9))
    assert MATCH_FLOOR < expected < MATCH_CEILING  # inside the band: the quantile itself
    assert value == pytest.approx(expected, abs=1e-4)
    assert _threshold(sample[:3], found) is None  # too few pairs to tell


def test_the_admin_shows_the_threshold_and_where_it_comes_from(store, admin_client):
    kb = kb_get_or_create(name="Manuals")
    page = admin_client.get(f"/admin/ingest/knowledgebase/{kb.pk}/change/").content.decode()
    assert f"{MATCH_DEFAULT:.3f} (the default, until it has enough passages" in page
    fill(kb, store, documents=3, paragraphs=10)
    kb.refresh_from_db()
    page = admin_client.get(f"/admin/ingest/knowledgebase/{kb.pk}/change/").content.decode()
    assert (
        f"{kb.match_threshold:.3f} (calibrated on its {kb.match_calibrated_chunks:,} passages)"
        in page
    )


def test_a_calibration_that_fails_leaves_the_document_ready(caplog):
    class VectorsFail(MemoryStore):
        def vectors(self, *, collection, ids):
            raise RuntimeError("the index could not hand back its vectors")

    kb = kb_get_or_create(name="Manuals")
    fill(kb, VectorsFail(), documents=1, paragraphs=30)  # asserts each document is ready
    kb.refresh_from_db()
    assert kb.match_threshold is None and "not recalibrated" in caplog.text

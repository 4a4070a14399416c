"""Retrieval: fusion, passages and hybrid search, fast, with a hashing embedder and an
in-memory vector store (the real model and Chroma are tested in test_services and the
evaluation)."""

from __future__ import annotations

import io

import pytest

from assistant.retrieval import (
    PASSAGE_MAX_TOKENS,
    Hit,
    RetrievalConfig,
    fuse,
    passages_from_hits,
    retrieve,
)
from ingest.selectors import ChunkRow
from ingest.services import IngestTools, document_create, document_ingest, kb_get_or_create
from ministral.tokens import get_counter
from tests.fakes import HashEmbedder, MemoryStore


def Row(pk: int, **values: object) -> ChunkRow:
    """A chunk as retrieval reads it, with defaults for what a test does not care about."""
    fields: dict = {
        "document_id": 1,
        "document_name": "manual.md",
        "vector_id": f"v{pk}",
        "ordinal": 0,
        "page": None,
        "heading": "",
        "text": "",
        "token_count": 100,
        "asset_id": None,
    }
    return ChunkRow(pk=pk, **(fields | values))


def test_fusion_lifts_exact_words_without_burying_meaning():
    a, b, c = Row(1), Row(2), Row(3)
    dense = [(a, 0.80), (b, 0.78), (c, 0.40)]
    lexical = [(b, 12.0), (c, 11.0)]
    fused = fuse(dense, lexical, config=RetrievalConfig(lexical_weight=0.15))
    assert [h.chunk.pk for h in fused] == [2, 1, 3]  # b: 0.78 + 0.15 beats a: 0.80
    assert fused[0].dense_rank == 2 and fused[0].lexical_rank == 1


def test_a_lexical_only_hit_starts_from_the_weakest_dense_score():
    a, lone = Row(1), Row(9)
    fused = fuse([(a, 0.5)], [(lone, 3.0)], config=RetrievalConfig(lexical_weight=0.15))
    # 0.5 (the weakest dense score) + 0.15 x 3/3: a strong exact match among the dense tail
    assert [h.chunk.pk for h in fused] == [9, 1] and fused[0].score == pytest.approx(0.5 + 0.15)


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_single_modes_use_one_list(mode):
    fused = fuse([(Row(1), 0.9)], [(Row(2), 5.0)], config=RetrievalConfig(mode=mode))
    assert [h.chunk.pk for h in fused] == ([1] if mode == "dense" else [2])


def test_neighbouring_hits_merge_up_to_the_passage_limit():
    rows = [Row(n, ordinal=n, token_count=300, text=f"part {n}") for n in range(8)]
    hits = [Hit(r, 1.0 - r.ordinal / 100) for r in rows]
    passages = passages_from_hits(hits)
    assert all(p.token_count <= PASSAGE_MAX_TOKENS for p in passages)
    assert [len(p.chunks) for p in passages] == [3, 3, 2]  # one long run, split, not dropped
    assert [c.ordinal for p in passages for c in p.chunks] == list(range(8))


def test_duplicate_text_is_one_passage():
    hits = [Hit(Row(1, ordinal=0, text="Same text"), 0.9)]
    hits += [Hit(Row(2, ordinal=5, text="same  TEXT"), 0.8)]
    assert len(passages_from_hits(hits)) == 1


@pytest.fixture
def fake_tools():
    return IngestTools(
        embedder=HashEmbedder(), store=MemoryStore(), count_llm_tokens=get_counter().text
    )


def ingest(tools, kb, name: str, text: str):
    document = document_create(
        kb=kb, filename=name, content=io.BytesIO(text.encode()), enqueue=False
    ).document
    result = document_ingest(document_id=document.pk, owner="test:1:1", tools=tools)
    assert result.status == "ready", result.error
    return result


@pytest.mark.django_db(transaction=True)
def test_hybrid_retrieval_finds_the_passage_by_meaning_and_by_exact_word(fake_tools):
    kb = kb_get_or_create(name="Fast")
    printer = ingest(
        fake_tools, kb, "printer.md", "# Errors\n\nError E-42 means the paper tray is empty."
    )
    ingest(
        fake_tools, kb, "network.md", "# Network\n\nThe printer joins Wi-Fi from the settings menu."
    )
    hits = retrieve(
        kb=kb,
        query="what does E-42 mean",
        embedder=fake_tools.embedder,
        store=fake_tools.store,
        limit=5,
    )
    assert hits[0].chunk.document_id == printer.pk
    lexical = retrieve(
        kb=kb,
        query="E-42",
        embedder=fake_tools.embedder,
        store=fake_tools.store,
        limit=5,
        config=RetrievalConfig(mode="lexical"),
    )
    assert [h.chunk.document_id for h in lexical] == [printer.pk]
    assert printer.chunks.get().token_count == get_counter().text(printer.chunks.get().text)

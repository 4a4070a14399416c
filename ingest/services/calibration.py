"""How close a question's best passage must be for a knowledge base to count as answering it.

Cosine similarity means different things in different collections: passages of one
narrow manual all sit close together, a mixed folder's sit far apart. So the bar is set
from each knowledge base's own vectors. Passages of two different documents are, as a
rule, about different things; a question whose best passage is no closer than most such
unrelated pairs are to each other is not answered here. The threshold is the
MATCH_QUANTILE of the similarities between passages of different documents (passages far
apart in one document when there is only one), within [MATCH_FLOOR, MATCH_CEILING].

On python-faq (int8 MiniLM) the pairs' 0.9 quantile is 0.376: `manage.py evaluate
--negatives bench/eval/gnuplot-negatives.jsonl` refuses 90% of 100 plotting questions and
1.8% of the FAQ's own (README, "Retrieval quality").
It is computed in the worker after a document is indexed, when the knowledge base has
grown or shrunk by a quarter since the last time, never on the question path.
"""

from __future__ import annotations

import logging

import numpy as np

from ingest.models import Chunk, KnowledgeBase
from ingest.store import VectorStore

logger = logging.getLogger("docent.ingest")

MATCH_QUANTILE = 0.9
MATCH_FLOOR, MATCH_CEILING = 0.25, 0.40
MATCH_DEFAULT = 0.33  # until a knowledge base has enough passages to calibrate on
SAMPLE_PASSAGES = 400  # vectors read per calibration: a 400 x 400 product, a few ms
MIN_PAIRS = 50
MIN_CHANGE = 0.25  # recalibrate when the passage count moved by this share (or 20)


def kb_match_threshold(*, kb: KnowledgeBase) -> float:
    """The cosine similarity a question's best passage in `kb` must reach: the staff's
    setting, else the calibrated one, else the default."""
    if kb.no_match_threshold is not None:
        return kb.no_match_threshold
    return kb.match_threshold if kb.match_threshold is not None else MATCH_DEFAULT


def kb_calibrate(*, kb: KnowledgeBase, store: VectorStore) -> float | None:
    """Set `kb.match_threshold` from a sample of its vectors; None if too few to tell."""
    rows = list(
        Chunk.objects.filter(kb=kb)
        .order_by("pk")
        .values_list("vector_id", "document_id", "ordinal")
    )
    step = max(1, len(rows) // SAMPLE_PASSAGES)
    sample = rows[::step][:SAMPLE_PASSAGES]
    found = store.vectors(collection=kb.collection_name, ids=[r[0] for r in sample])
    sample = [r for r in sample if r[0] in found]
    threshold = _threshold(sample, found)
    KnowledgeBase.objects.filter(pk=kb.pk).update(
        match_threshold=threshold, match_calibrated_chunks=len(rows)
    )
    kb.match_threshold, kb.match_calibrated_chunks = threshold, len(rows)
    logger.info(
        "Knowledge base %s: match threshold %s from %d passages", kb.slug, threshold, len(rows)
    )
    return threshold


def _threshold(sample: list[tuple[str, int, int]], vectors: dict[str, np.ndarray]) -> float | None:
    if len(sample) < 2:
        return None
    matrix = np.stack([vectors[r[0]] for r in sample])
    similarity = matrix @ matrix.T
    documents = np.array([r[1] for r in sample])
    ordinals = np.array([r[2] for r in sample])
    upper = np.triu(np.ones(similarity.shape, dtype=bool), k=1)
    unrelated = upper & (documents[:, None] != documents[None, :])
    if unrelated.sum() < MIN_PAIRS:  # one document (or nearly): its far-apart passages
        same = documents[:, None] == documents[None, :]
        unrelated = upper & same & (np.abs(ordinals[:, None] - ordinals[None, :]) >= 3)
    if unrelated.sum() < MIN_PAIRS:
        return None
    value = float(np.quantile(similarity[unrelated], MATCH_QUANTILE))
    return round(min(MATCH_CEILING, max(MATCH_FLOOR, value)), 4)


def kb_calibrate_if_changed(*, kb: KnowledgeBase, store: VectorStore) -> None:
    """Recalibrate when the passage count has moved by MIN_CHANGE (or 20) since last time."""
    count = Chunk.objects.filter(kb=kb).count()
    before = kb.match_calibrated_chunks
    if abs(count - before) >= max(20, MIN_CHANGE * before) or (
        kb.match_threshold is None and count >= 20 and count != before
    ):
        kb_calibrate(kb=kb, store=store)

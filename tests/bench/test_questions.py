"""The load benchmark's question pool: enough distinct questions that no cache flatters it."""

from __future__ import annotations

import itertools
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))  # the benchmarks import each other as scripts

from questions import question_pool


def test_the_pool_holds_at_least_500_distinct_questions_in_the_same_order_every_run():
    pool = question_pool()
    assert len(pool) >= 500 and len(set(pool)) == len(pool)
    assert all(q.endswith("?") and len(q.split()) >= 6 for q in pool)
    assert question_pool() == pool
    neighbours = sum(a.split()[:4] == b.split()[:4] for a, b in itertools.pairwise(pool))
    assert neighbours < len(pool) // 4  # shuffled: next chats do not ask near-copies

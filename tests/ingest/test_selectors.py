"""Lexical search over the real full-text index: ranking, knowledge-base scope, work bounds."""

from __future__ import annotations

from ingest.models import Chunk
from ingest.selectors import chunks_search_lexical
from ingest.services import kb_get_or_create


def _names(kb, query: str, **kwargs) -> list[str]:
    hits = chunks_search_lexical(kb=kb, query=query, **kwargs)
    by_id = dict(Chunk.objects.filter(kb=kb).values_list("pk", "document__filename"))
    return [by_id[h.chunk_id] for h in hits]


def test_a_common_word_is_left_out_once_its_postings_exceed_the_budget(kb, ingest_text):
    for n in range(12):
        ingest_text(kb, f"printer-{n:02d}.md", f"Printer number {n} sits on floor {n}.")
    ingest_text(kb, "toner.md", "The printer toner is in the supply cupboard.")

    everything = _names(kb, "printer toner", limit=50, max_postings=0)
    assert everything[0] == "toner.md" and len(everything) == 13

    # "toner" is in 1 chunk and "printer" in 13: a budget of 5 postings keeps only the rare one.
    assert _names(kb, "printer toner", limit=50, max_postings=5) == ["toner.md"]
    # The rarest word is always searched, even when it alone is over the budget.
    assert len(_names(kb, "printer", limit=50, max_postings=5)) == 13
    # Words the index has never seen match nothing and cost nothing.
    assert _names(kb, "toner xylophonic", limit=50, max_postings=5) == ["toner.md"]


def test_results_stay_in_the_knowledge_base_asked_even_when_another_ranks_higher(kb, ingest_text):
    other = kb_get_or_create(name="Zoo")
    for n in range(25):  # more strong matches elsewhere than the first, wide pass takes in
        ingest_text(other, f"zebra-{n:02d}.md", f"Zebra zebra zebra {n}. Zebras everywhere.")
    ingest_text(kb, "stripes.md", "One zebra appears in this manual, once, among other words.")

    assert _names(kb, "zebra", limit=5) == ["stripes.md"]
    assert len(_names(other, "zebra", limit=5)) == 5

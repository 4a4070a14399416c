from __future__ import annotations

import itertools
import random

import pytest

from ingest.pipeline.chunk import Chunker, merge_chunk_texts
from ingest.pipeline.types import PageText


def chunk_pages(pages, *, count_tokens, max_tokens, overlap_tokens):
    """Every page through one Chunker, as the worker feeds them."""
    chunker = Chunker(
        count_tokens=count_tokens, max_tokens=max_tokens, overlap_tokens=overlap_tokens
    )
    return [draft for page in pages for draft in chunker.feed(page)]


@pytest.fixture(scope="module")
def count(embedder):
    return embedder.count_tokens


def test_every_chunk_fits_the_embedder_window(count, embedder):
    text = "\n\n".join(
        f"Paragraph {i}. " + "The quick brown fox jumps over the lazy dog. " * (i % 40 + 1)
        for i in range(60)
    )
    drafts = chunk_pages([PageText(1, text)], count_tokens=count, max_tokens=200, overlap_tokens=40)
    assert len(drafts) > 10
    for draft in drafts:
        assert count([draft.embed_text])[0] <= 200 <= embedder.max_tokens
        assert draft.embed_tokens == count([draft.embed_text])[0]


def test_one_enormous_word_run_is_still_split(count):
    text = " ".join(f"token{i}" for i in range(5000))  # no sentences, no lines
    drafts = chunk_pages(
        [PageText(None, text)], count_tokens=count, max_tokens=128, overlap_tokens=16
    )
    assert all(count([d.embed_text])[0] <= 128 for d in drafts)
    assert "token4999" in drafts[-1].text


def test_headings_start_chunks_and_travel_with_them(count):
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n## Usage\n\nCall the tool."
    )
    drafts = chunk_pages(
        [PageText(None, text)], count_tokens=count, max_tokens=200, overlap_tokens=0
    )
    assert [(d.heading, d.text) for d in drafts] == [
        ("Guide", "Intro text."),
        ("Guide > Install", "Run the installer."),
        ("Guide > Usage", "Call the tool."),
    ]
    assert drafts[1].embed_text == "Guide > Install\nRun the installer."


def test_pages_are_kept_and_never_mixed(count):
    pages = [PageText(n, f"Page {n} says something specific about topic {n}.") for n in (1, 2, 3)]
    drafts = chunk_pages(pages, count_tokens=count, max_tokens=200, overlap_tokens=20)
    assert [d.page for d in drafts] == [1, 2, 3]
    assert [d.ordinal for d in drafts] == [0, 1, 2]
    assert "topic 2" in drafts[1].text


def test_split_passages_overlap(count):
    sentences = [f"Sentence number {i} talks about item {i}." for i in range(80)]
    drafts = chunk_pages(
        [PageText(1, " ".join(sentences))], count_tokens=count, max_tokens=100, overlap_tokens=30
    )
    assert len(drafts) >= 3
    for before, after in itertools.pairwise(drafts):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert last_sentence in after.text  # the tail of one chunk opens the next


def test_code_fences_keep_their_lines(count):
    text = "Example:\n\n```\ndef f():\n    return 1\n\n# not a heading\n```\n\nDone."
    drafts = chunk_pages(
        [PageText(None, text)], count_tokens=count, max_tokens=200, overlap_tokens=0
    )
    assert all(d.heading == "" for d in drafts)
    assert "# not a heading" in drafts[0].text


def _longest_overlap_by_every_length(before: str, after: str) -> str:
    """The definition, one comparison per length: what the fast merge must agree with."""
    for size in range(min(len(before), len(after), 2000), 10, -1):
        if before.endswith(after[:size]):
            return after[size:]
    return "\n\n" + after


def test_merged_neighbours_read_as_the_text_once():
    """A passage built from overlapping chunks shows each sentence once, in order."""
    words = [f"w{n}" for n in range(400)]
    text = " ".join(words)
    first, second = text[:1200], text[900:]
    assert merge_chunk_texts([first, second]) == text
    assert merge_chunk_texts(["alpha beta gamma", "delta epsilon zeta"]) == (
        "alpha beta gamma\n\ndelta epsilon zeta"
    )


def test_the_fast_merge_agrees_with_the_definition_on_repetitive_text():
    # Few letters make many false starts: the hard case for a search that skips ahead.
    rng = random.Random(7)
    for _ in range(3000):
        before = "".join(rng.choice("ab ") for _ in range(rng.randrange(0, 60)))
        after = before[rng.randrange(0, len(before) + 1) :] if rng.random() < 0.7 else ""
        after += "".join(rng.choice("ab ") for _ in range(rng.randrange(0, 40)))
        expected = _longest_overlap_by_every_length(before, after)
        assert merge_chunk_texts([before, after]) == before + expected

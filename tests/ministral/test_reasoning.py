"""Inline [THINK]…[/THINK] never reaches the answer, however the stream is cut."""

from __future__ import annotations

import random

import pytest

from ministral.prompt import Text, Thinking
from ministral.reasoning import ThinkSplitter, reasoning_system_parts

REPLY = "[THINK]The user asks about E-42; source [1] says it.[/THINK]\n\nE-42 means the tray is empty [1]."


def run(chunks: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    pieces = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.flush()
    return (
        "".join(t for r, t in pieces if r),
        "".join(t for r, t in pieces if not r),
    )


def split_think(text: str) -> tuple[str, str]:
    return run([text])


def test_every_two_way_split_keeps_the_trace_out_of_the_answer():
    for cut in range(len(REPLY) + 1):
        reasoning, answer = run([REPLY[:cut], REPLY[cut:]])
        assert reasoning == "The user asks about E-42; source [1] says it.", cut
        assert answer == "E-42 means the tray is empty [1].", cut


def test_random_chunking_one_character_at_a_time_and_more():
    rng = random.Random(5)
    for _ in range(300):
        chunks, i = [], 0
        while i < len(REPLY):
            step = rng.choice([1, 1, 2, 3, 7, 20])
            chunks.append(REPLY[i : i + step])
            i += step
        assert run(chunks) == (
            "The user asks about E-42; source [1] says it.",
            "E-42 means the tray is empty [1].",
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No markers at all [1].", ("", "No markers at all [1].")),
        ("[THINK]cut off while thinking", ("cut off while thinking", "")),
        ("Ends with a bracket [", ("", "Ends with a bracket [")),
        ("Looks like [TH but is not", ("", "Looks like [TH but is not")),
        ("[THINK]a[/THINK]b[THINK]c[/THINK]d", ("ac", "bd")),
    ],
)
def test_split_think(text, expected):
    assert split_think(text) == expected


def test_the_answer_still_streams_while_a_marker_might_be_starting():
    splitter = ThinkSplitter()
    assert splitter.feed("The tray is empty [") == [(False, "The tray is empty ")]
    assert splitter.feed("1].") == [(False, "[1].")]


def test_reasoning_system_prompt_is_the_model_cards():
    parts = reasoning_system_parts()
    assert isinstance(parts[0], Text) and parts[0].text.startswith(
        "# HOW YOU SHOULD THINK AND ANSWER"
    )
    assert parts[0].text.endswith("must follow the template below:")
    assert isinstance(parts[1], Thinking) and parts[1].text.startswith("Your thoughts or/and draft")
    assert (
        isinstance(parts[2], Text) and parts[2].text == "Here, provide a self-contained response."
    )

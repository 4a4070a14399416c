"""ministral.tokens must count exactly what mistral-common counts (configured like the server).

Requests are built in Docent's neutral shape, written on the wire by assistant.llm.wire
(the mistral-common dialect) and counted by mistral-common itself: the two must agree.
Run without Django: python -m pytest tests/ministral/test_tokens.py -q -p no:django
"""

from __future__ import annotations

import io
import random
import time
from functools import cache
from types import SimpleNamespace

import pytest
from PIL import Image as PILImage

from assistant.llm.wire import wire_messages
from ministral.prompt import ChatMessage, Image, Part, Text, Thinking
from ministral.tokens import (
    BOS_TOKENS,
    ContentBuilder,
    count_messages,
    get_counter,
    image_tokens,
    overhead,
)
from standin import count_prompt_tokens, mistral_tokenizer

CONTEXT_WINDOW = 262_144

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


@cache
def image(width: int, height: int, fmt: str = "PNG") -> Image:
    """A solid-colour image (cheap to encode, any size)."""
    buf = io.BytesIO()
    mode = "RGBA" if fmt == "PNG" and (width + height) % 3 == 0 else "RGB"
    PILImage.new(mode, (width, height), (200, 30, 90)).save(buf, fmt)
    return Image(buf.getvalue(), f"image/{'jpeg' if fmt == 'JPEG' else fmt.lower()}", width, height)


def msg(role: str, *parts: Part | str, reasoning: str = "") -> ChatMessage:
    return ChatMessage(role, tuple(Text(p) if isinstance(p, str) else p for p in parts), reasoning)  # type: ignore[arg-type]


def reference(messages: list[ChatMessage]) -> int:
    return count_prompt_tokens(wire_messages(messages, dialect="mistral-common"))


WORDS = [
    "the",
    "pump",
    "must",
    "be",
    "primed",
    "before",
    "start",
    "voltage",
    "manual",
    "page",
    "figure",
    "safety",
    "valve",
]
UNICODE = [
    "Größe",
    "café",
    "naïve",
    "日本語のテキスト",
    "中文字符",
    "Привет мир",
    "مرحبا بالعالم",
    "emoji 😀🚀👍🏽",
    "e\u0301",  # combining mark
    "ﬁ ligature",
    "½ ² Ⅻ",
    "\u200b zero width",
    "tab\tsep",
    "crlf\r\nline",
]
CODE = [
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) { a[i] += 1; }",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "SELECT * FROM t WHERE id = 42;",
    "    indented\n\n\n  trailing   ",
    "[INST] not a control token [/INST] </s> [IMG]",
]


def random_text(rng: random.Random, max_pieces: int = 40) -> str:
    pieces = []
    for _ in range(rng.randint(0, max_pieces)):
        r = rng.random()
        if r < 0.55:
            pieces.append(
                rng.choice(WORDS).capitalize() if rng.random() < 0.2 else rng.choice(WORDS)
            )
        elif r < 0.7:
            pieces.append(rng.choice(UNICODE))
        elif r < 0.8:
            pieces.append(rng.choice(CODE))
        elif r < 0.9:
            pieces.append(
                rng.choice(["\n", "\n\n", ".", ",", "?", " ", "  ", "!\n", "[1]", "\n- "])
            )
        else:
            pieces.append(str(rng.randint(0, 10**6)))
    sep = rng.choice([" ", "", "\n", " "])
    return sep.join(pieces) + rng.choice(["", "", " ", "  ", "\n", ". "])


IMAGE_SIZES = [
    (1, 1),
    (28, 28),
    (29, 57),
    (512, 512),
    (1024, 768),
    (1541, 1),
    (3000, 20),
    (20, 2900),
    (1540, 1540),
    (2480, 3508),
    (777, 333),
    (1600, 900),
]


def random_user(rng: random.Random, images_left: list[int]) -> ChatMessage:
    if rng.random() < 0.4:
        return msg("user", random_text(rng))
    parts: list[Part | str] = []
    for _ in range(rng.randint(0, 5)):
        if images_left[0] > 0 and rng.random() < 0.35:
            images_left[0] -= 1
            w, h = rng.choice(IMAGE_SIZES)
            parts.append(image(w, h, rng.choice(["PNG", "PNG", "JPEG"])))
        else:
            parts.append(random_text(rng))
    return msg("user", *parts)


def random_assistant(rng: random.Random, reasoning: bool) -> ChatMessage:
    answer = random_text(rng) or "ok"
    if reasoning and rng.random() < 0.6:
        return msg("assistant", answer, reasoning=random_text(rng) or "hmm")
    return msg("assistant", answer)


def random_request(rng: random.Random) -> list[ChatMessage]:
    """A valid (for mistral-common's serving validator) chat request."""
    images_left = [rng.randint(0, 8)]
    reasoning = rng.random() < 0.4
    msgs: list[ChatMessage] = []
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        if rng.random() < 0.2:
            msgs.append(
                msg("system", random_text(rng), Thinking(random_text(rng)), random_text(rng))
            )
        else:
            msgs.append(msg("system", random_text(rng)))
    for _turn in range(rng.randint(0, 3)):
        for _ in range(rng.choice([1, 1, 1, 2])):  # sometimes consecutive user messages
            msgs.append(random_user(rng, images_left))
        if rng.random() < 0.15:  # a system message in the middle (allowed after user)
            msgs.append(msg("system", random_text(rng)))
        for _ in range(rng.choice([1, 1, 1, 2])):  # sometimes consecutive assistant messages
            msgs.append(random_assistant(rng, reasoning))
    msgs.append(random_user(rng, images_left))
    return msgs


# ------------------------------------------------------------------------------------------
# image tokens
# ------------------------------------------------------------------------------------------

REFERENCE_TABLE = [
    ((1, 1), 2),
    ((28, 28), 2),
    ((512, 512), 380),
    ((1024, 768), 1064),
    ((1540, 1540), 3080),
    ((2480, 3508), 2200),
    ((4000, 1000), 784),
]


@pytest.mark.parametrize(("size", "expected"), REFERENCE_TABLE)
def test_image_tokens_reference_table(size: tuple[int, int], expected: int) -> None:
    assert image_tokens(*size) == expected


def test_image_tokens_match_mistral_common_image_encoder() -> None:
    encoder = mistral_tokenizer().instruct_tokenizer.image_encoder
    assert encoder is not None
    rng = random.Random(7)
    sizes = [(rng.randint(1, 12000), rng.randint(1, 12000)) for _ in range(3000)]
    sizes += [(1, 30000), (30000, 1), (1540, 1541), (3079, 3081), (56, 56), (57, 55)]
    for w, h in sizes:
        cols, rows = encoder._image_to_num_tokens(SimpleNamespace(size=(w, h)))
        assert image_tokens(w, h) == rows * (cols + 1), (w, h)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_image_requests_match_mistral_common(fmt: str) -> None:
    msgs = [msg("user", "Look:", image(321, 123, fmt), image(1600, 900, fmt))]
    assert count_messages(msgs) == reference(msgs)


# ------------------------------------------------------------------------------------------
# whole requests
# ------------------------------------------------------------------------------------------


def test_simple_request_overhead() -> None:
    counter = get_counter()
    msgs = [msg("system", "Be nice."), msg("user", "What is 2+2?")]
    expected = (
        BOS_TOKENS
        + overhead("system")
        + counter.text("Be nice.")
        + overhead("user")
        + counter.text("What is 2+2?")
    )
    assert count_messages(msgs) == expected == reference(msgs) == 15
    assert counter.text("What is 2+2?") == 7


EDGE_CASES: list[list[ChatMessage]] = [
    [msg("user", "")],
    [msg("user")],
    [msg("system", ""), msg("user", "hi")],
    [msg("system", "only a system prompt")],
    [msg("system", "a"), msg("system", "b"), msg("user", "c")],
    [msg("assistant", "I start"), msg("user", "ok")],
    [msg("user", "q"), msg("assistant", "answer with trailing spaces   "), msg("user", "next")],
    [msg("user", "q"), msg("assistant", "   "), msg("user", "next")],
    [
        msg("user", "q"),
        msg("assistant", "a  ", reasoning="r"),
        msg("assistant", "b  "),
        msg("user", "next"),
    ],
    [msg("user", "q"), msg("assistant", "", reasoning="only reasoning"), msg("user", "next")],
    [
        msg("user", "first"),
        msg("user", "second", image(100, 60)),
        msg("user", image(30, 900), "third"),
        msg("user", "fourth"),
    ],
    [msg("user", "Look:", "", "here.", image(640, 480))],
    [
        msg("system", "# HOW YOU SHOULD THINK\n", Thinking("Plan the answer."), "\nThen answer."),
        msg("user", "go"),
    ],
    [msg("user", "q"), msg("assistant", Thinking("a trace in the content")), msg("user", "next")],
    [msg("user", "a."), msg("system", "mid-conversation system prompt"), msg("user", "b")],
]


@pytest.mark.parametrize("messages", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_match_mistral_common(messages: list[ChatMessage]) -> None:
    assert count_messages(messages) == reference(messages)


def test_reasoning_system_prompt_matches_mistral_common() -> None:
    from ministral.reasoning import reasoning_system_parts

    msgs = [
        ChatMessage("system", (*reasoning_system_parts(), Text("Docent's rules."))),
        msg("user", "q"),
    ]
    assert count_messages(msgs) == reference(msgs)


def test_random_requests_match_mistral_common() -> None:
    rng = random.Random(20251202)
    n_images = n_reasoning = 0
    for i in range(250):
        msgs = random_request(rng)
        n_images += sum(len(m.images) for m in msgs)
        n_reasoning += sum(1 for m in msgs if m.reasoning)
        assert count_messages(msgs) == reference(msgs), f"request #{i}: {msgs!r:.2000}"
    assert n_images > 100 and n_reasoning > 20  # the generator really covers these


def test_unicode_heavy_texts_match_raw_bpe() -> None:
    counter = get_counter()
    tekken = mistral_tokenizer().instruct_tokenizer.tokenizer
    rng = random.Random(3)
    for _ in range(300):
        s = random_text(rng, 200)
        assert counter.text(s) == len(tekken.encode(s, bos=False, eos=False))


def test_unsupported_inputs_raise() -> None:
    with pytest.raises(ValueError):
        count_messages([])
    with pytest.raises(ValueError):
        count_messages([msg("system", image(10, 10))])
    with pytest.raises(ValueError):
        count_messages([msg("user", Thinking("users do not think here"))])
    with pytest.raises(ValueError):
        count_messages([msg("user", "q"), msg("assistant", ""), msg("user", "q")])


# ------------------------------------------------------------------------------------------
# incremental packing
# ------------------------------------------------------------------------------------------


def source_block(rng: random.Random, n: int) -> str:
    body = random_text(rng, 60)
    return rng.choice(
        [
            f"[{n}] doc{n}.pdf, page {rng.randint(1, 99)}\n{body}",
            f'<source id="{n}">\n{body}\n</source>',
            f"Source {n}: {body}",
            body,
        ]
    )


def test_join_cost_is_exact() -> None:
    counter = get_counter()
    rng = random.Random(11)
    for _ in range(400):
        a = random_text(rng, rng.choice([3, 80, 600]))
        b = random_text(rng, rng.choice([3, 80, 600]))
        sep = rng.choice(["", "\n\n", " ", "\n", "x"])
        expected = counter.text(a + sep + b) - counter.text(a) - counter.text(b)
        assert counter.join_cost(a, sep, b) == expected


ALPHABET = (
    "aZéßΩжأ日本語한글ǅʰ"  # letters: Ll Lu Lo Lt Lm
    "\u0301\u0903\u20dd"  # marks Mn Mc Me
    "09٣½²Ⅻ"  # numbers Nd No Nl
    " \t\n\r\x0b\x0c\u00a0\u2028\u3000"  # whitespace
    ".,;:!?'\"/\\()[]{}<>-_*#@$%^&|~`+="  # punctuation, symbols
    "😀👍🏽\u200b\u200d\ufeff"
)


def test_boundary_positions_split_exactly() -> None:
    """The safe split points used by join_cost really are BPE pre-token boundaries."""
    from ministral.tokens import _BOUNDARY

    counter = get_counter()
    rng = random.Random(1234)
    checked = 0
    for _ in range(6000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 40)))
        whole = counter.text(s)
        for m in _BOUNDARY.finditer(s):
            k = m.start()
            assert counter.text(s[:k]) + counter.text(s[k:]) == whole, (s, k)
            checked += 1
    assert checked > 800


def test_join_cost_without_split_points() -> None:
    counter = get_counter()
    for a, b in [
        ("1234567890" * 300, "9876" * 500),
        ("日本語" * 2000, "。テキスト" * 900),
        ("", "x"),
    ]:
        for sep in ("", "\n\n", " "):
            expected = counter.text(a + sep + b) - counter.text(a) - counter.text(b)
            assert counter.join_cost(a, sep, b) == expected


@pytest.mark.parametrize("seed", range(12))
def test_content_builder_tracks_exact_total(seed: int) -> None:
    rng = random.Random(seed)
    history: list[ChatMessage] = []
    if rng.random() < 0.8:
        history.append(msg("system", random_text(rng)))
    if rng.random() < 0.4:
        history += [msg("user", random_text(rng) or "earlier"), random_assistant(rng, True)]
    tail: list[Part] = []
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.2:
            tail.append(image(*rng.choice(IMAGE_SIZES[:6])))
        else:
            tail.append(Text("Question: " + random_text(rng)))
    builder = ContentBuilder(history=history, tail=tail)
    assert builder.total == reference([*history, builder.message()])
    images = 0
    for n in range(1, rng.randint(2, 14)):
        part: Part
        if images + len(tail) < 6 and rng.random() < 0.15:
            part = image(*rng.choice(IMAGE_SIZES[:6]))
            images += 1
        else:
            part = Text(rng.choice(["", source_block(rng, n)]))
        before = builder.total
        predicted = builder.cost(part)
        assert builder.add(part) == predicted
        assert builder.total == before + predicted
        assert builder.total == count_messages([*history, builder.message()])
    assert builder.total == reference([*history, builder.message()])


def test_greedy_packer_never_exceeds_budget() -> None:
    rng = random.Random(99)
    history = [msg("system", "Answer only from the numbered sources.")]
    builder = ContentBuilder(history=history, tail=[Text("Question: how do I prime the pump?")])
    budget = 3000
    skipped = 0
    for n in range(1, 200):
        part = Text(source_block(rng, n))
        if builder.total + builder.cost(part) <= budget:
            builder.add(part)
        else:
            skipped += 1
    assert skipped > 0
    assert builder.total <= budget
    assert builder.total == reference([*history, builder.message()])


# ------------------------------------------------------------------------------------------
# size and speed
# ------------------------------------------------------------------------------------------


def big_request(target_tokens: int = 250_000) -> list[ChatMessage]:
    """A RAG request of ~target_tokens: manual-like prose with some unicode and code."""
    rng = random.Random(5)
    counter = get_counter()
    blocks: list[str] = []
    tokens = 0
    while tokens < target_tokens:
        n = len(blocks) + 1
        words = [rng.choice(WORDS) for _ in range(rng.randint(80, 400))]
        for i in range(0, len(words), rng.randint(8, 20)):
            words[i] = words[i].capitalize()
            if i:
                words[i - 1] += rng.choice([".", ".", ",", ";", ".\n"])
        if rng.random() < 0.3:
            words.append(rng.choice(UNICODE + CODE))
        block = f"[{n}] manual-{n}.pdf, page {n % 300}\n" + " ".join(words) + "."
        blocks.append(block)
        tokens += counter.text(block)
    return [
        msg("system", "You answer strictly from the sources. " * 20),
        msg("user", "Sources:\n\n" + "\n\n".join(blocks) + "\n\nQuestion: why?"),
    ]


def test_256k_request_is_exact_and_fast() -> None:
    msgs = big_request()
    counter = get_counter()
    counter.text("warm up")
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        n = count_messages(msgs)
        timings.append(time.perf_counter() - t0)
    chars = sum(len(m.plain_text()) for m in msgs)
    print(
        f"\ncount_messages: {n} tokens, {chars} chars: "
        f"best {min(timings) * 1000:.1f} ms, median {sorted(timings)[2] * 1000:.1f} ms"
    )
    assert 200_000 < n < CONTEXT_WINDOW + 20_000
    assert n == reference(msgs)
    assert min(timings) < 1.0  # generous; the target is well under 150 ms

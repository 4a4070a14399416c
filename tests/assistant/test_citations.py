"""An answer's sources: one entry per document, the cited ones first, in citation order."""

from __future__ import annotations

from assistant.citations import sources_cited


def passage(number: int, document_id: int, name: str, page: int | None = None) -> dict:
    return {
        "number": number,
        "document_id": document_id,
        "document": name,
        "pages": [page] if page else [],
        "section": f"Section {number}",
        "excerpt": f"Passage {number} of {name}",
        "chunk_ids": [number * 10],
        "image": False,
    }


# Nine passages from three files, as a packed answer gets them: guide.html four times.
READ = [
    passage(1, 7, "guide.html"),
    passage(2, 8, "manual.pdf", 12),
    passage(3, 7, "guide.html"),
    passage(4, 9, "faq.md"),
    passage(5, 8, "manual.pdf", 3),
    passage(6, 7, "guide.html"),
    passage(7, 7, "guide.html"),
    passage(8, 10, "lorem.txt"),
    passage(9, 8, "manual.pdf", 40),
]


def test_one_entry_per_cited_document_in_the_order_the_answer_cites_them():
    text = "Hold RESET [5]. The light blinks amber [3][5]; see also [2, 6]."
    grouped = sources_cited(text=text, sources=READ)
    cited = grouped["cited"]
    assert [e["document"] for e in cited] == ["manual.pdf", "guide.html"]
    assert cited[0]["numbers"] == [5, 2] and cited[0]["pages"] == [3, 12]
    assert cited[0]["link_pages"] == [3]  # the link opens the first cited passage
    assert cited[0]["excerpt"] == "Passage 5 of manual.pdf" and cited[0]["cited"] is True
    assert cited[1]["numbers"] == [3, 6]


def test_what_was_read_but_not_cited_is_counted_apart():
    grouped = sources_cited(text="Hold RESET [5].", sources=READ)
    assert [e["document"] for e in grouped["more"]] == ["guide.html", "faq.md", "lorem.txt"]
    assert all(not e["cited"] for e in grouped["more"])
    assert grouped["more_passages"] == 8  # manual.pdf's uncited pages 12 and 40 count too
    assert "manual.pdf" not in [e["document"] for e in grouped["more"]]


def test_numbers_in_code_in_links_or_out_of_range_are_not_citations():
    text = "Run `grep [1]` or see [the guide](https://example.com/[2]). Nothing at [42]."
    grouped = sources_cited(text=text, sources=READ)
    assert grouped["cited"] == [] and grouped["more_passages"] == len(READ)


def test_an_answer_without_sources_has_none():
    assert sources_cited(text="No idea [1].", sources=[]) == {
        "cited": [],
        "more": [],
        "more_passages": 0,
    }

"""Which sources an answer cites: one entry per document, cited ones first, in citation order.

An answer is packed with many passages, often several from one file. People want the
few documents the answer actually rests on, each with its cited pages and a passage to
check it against; the rest of what was read is kept, but apart ("N more passages read").
Every surface shows this same grouping: the chat page, the widget, the API and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .rendering import cited_numbers

Source = dict[str, Any]  # one packed passage, as _source_json in services.py stores it


def sources_cited(*, text: str, sources: Sequence[Source]) -> dict[str, Any]:
    """Group an answer's passages by document.

    Returns ``{"cited": [entry, ...], "more": [entry, ...], "more_passages": n}``: entries
    for documents the answer cites, in the order it first cites them, then entries for the
    documents that were read but not cited; ``more_passages`` counts the passages behind
    those. An entry has the fields of its first passage (document_id, document, section,
    excerpt, chunk_ids, image; ``number`` is that passage's citation number, ``pages`` are
    the cited pages in page order, ``link_pages`` the first passage's) plus ``numbers`` (every citation number that points
    into it) and ``cited``.
    """
    by_number = {int(s["number"]): s for s in sources}
    order = [n for n in dict.fromkeys(cited_numbers(text)) if n in by_number]
    cited = _grouped([by_number[n] for n in order], cited=True)
    cited_ids = {entry["document_id"] for entry in cited}
    rest = [s for s in sources if int(s["number"]) not in order]
    # A passage of a cited document that the answer didn't cite is still "read", not cited.
    more = _grouped([s for s in rest if s["document_id"] not in cited_ids], cited=False)
    return {"cited": cited, "more": more, "more_passages": len(rest)}


def _grouped(passages: Sequence[Source], *, cited: bool) -> list[Source]:
    entries: dict[int, Source] = {}
    for passage in passages:
        entry = entries.get(passage["document_id"])
        if entry is None:
            entry = entries[passage["document_id"]] = {
                **passage,
                "pages": [],
                "link_pages": list(passage.get("pages") or ()),  # where its link opens
                "numbers": [],
                "cited": cited,
            }
        entry["numbers"].append(int(passage["number"]))
        entry["pages"] += [p for p in passage.get("pages") or () if p not in entry["pages"]]
    for entry in entries.values():
        entry["pages"].sort()
    return list(entries.values())

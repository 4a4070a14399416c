"""Signed, short-lived links that open one cited source and nothing else.

Whoever holds such a link sees the cited pages of one document (in a document without
pages, the cited passages), until it expires. The link names who it was made for (a
widget, or an API key), and the edge that opens it checks that this one may still read
the document: revoking a key or turning a widget off closes its links at once. No
session token or API key is ever part of the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core import signing

_SALT = "docent.citation"
MAX_CHUNKS = 50  # a link names at most this many passages (it has to fit in a URL)


class CitationDenied(Exception):
    """The link can't be opened; `status` is 404 (unknown, forged) or 410 (expired)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Citation:
    holder: str  # whom the link was made for, e.g. "key:12" or "widget:w_abc"
    document_id: int
    chunk_ids: tuple[int, ...]


def citation_sign(*, holder: str, source: dict) -> str:
    """The signed part of a link to `source` (a source dict with document_id, chunk_ids)."""
    claim = {
        "h": holder,
        "d": source["document_id"],
        "c": list(source.get("chunk_ids") or [])[:MAX_CHUNKS],
    }
    return signing.dumps(claim, salt=_SALT, compress=True)


def citation_fragment(source: dict) -> str:
    """Where the viewer should scroll to: the first cited page."""
    return f"#page-{source['pages'][0]}" if source.get("pages") else ""


def citation_open(*, signed: str, max_age: int) -> Citation:
    """What a link may open (its age checked in seconds), or CitationDenied."""
    try:
        claim = signing.loads(signed, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise CitationDenied(
            "This link has expired. Open the source again from the answer.", status=410
        ) from exc
    except signing.BadSignature as exc:
        raise CitationDenied("No such source.", status=404) from exc
    return Citation(str(claim["h"]), int(claim["d"]), _ids(claim.get("c", [])))


def _ids(values: Sequence[object]) -> tuple[int, ...]:
    return tuple(int(str(value)) for value in values)

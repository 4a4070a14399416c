"""What the document viewer shows: each page as an image or rendered text, the cited
passage highlighted, and for staff every chunk with the state of its vector.

The views (ingest/views.py, and the widget's in assistant/widget_views.py) only check
access and pick the template; everything shown is put together here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from assistant.rendering import render_markdown
from ingest.chromaserver import ChromaServerError
from ingest.models import Chunk, Document, DocumentKind
from ingest.passages import Span, passage_find, words_of
from ingest.pdfpages import Box, pdf_page_highlights, pdf_viewable
from ingest.pipeline.chunk import merge_chunk_texts
from ingest.store import StoreUnavailable, VectorStore

MAX_CITED_CHUNKS = 50  # a citation names a passage: a few chunks, never a whole document
_MARKDOWN_KINDS = {DocumentKind.MARKDOWN, DocumentKind.DOCX, DocumentKind.HTML}
ImageUrl = Callable[[int], str]  # page number (1-based) -> URL of its image


@dataclass
class ViewerPage:
    number: int | None  # 1-based page, None in a document without pages
    text: str
    html: SafeString = field(default_factory=SafeString)
    image: str = ""  # URL of the page as an image; "" to show the text only
    boxes: list[Box] = field(default_factory=list)  # highlight rectangles over the image
    highlighted: bool = False  # the cited passage was found and is marked on this page

    @property
    def anchor(self) -> int:
        return self.number or 1


@dataclass(frozen=True)
class ChunkRow:
    chunk: Chunk
    vector: str  # "indexed", "missing", or "" when the store could not be asked


def viewer_cited_chunks(*, document: Document, raw: str) -> list[Chunk]:
    """The chunks named by a ``chunks=12,13`` parameter that belong to this document.

    Malformed ids, and ids of other documents' chunks, are ignored: a link is a hint of
    what to highlight, never a way to read something else.
    """
    ids = {int(part) for part in raw.split(",")[:MAX_CITED_CHUNKS] if _is_id(part.strip())}
    if not ids:
        return []
    return list(document.chunks.filter(pk__in=ids).order_by("ordinal").only("page", "text"))


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdecimal() and len(text) <= 12


def viewer_selected_page(*, raw: str, cited: Sequence[Chunk]) -> int:
    """The page to scroll to: ``?page=`` when it is a plain number, else the first cited."""
    if _is_id(raw) and len(raw) <= 6:
        return int(raw)
    return next((c.page for c in cited if c.page), 0)


def viewer_pages(
    *,
    document: Document,
    cited: Sequence[Chunk] = (),
    only_cited: bool = False,
    image_url: ImageUrl | None = None,
) -> list[ViewerPage]:
    """A document's pages as the viewer shows them, with the cited passage highlighted.

    `only_cited`: just the pages of `cited` (their passage, in a document without pages),
    for a widget visitor. `image_url`: how to link a PDF page's image; None shows text.
    """
    chunks = document.chunks.order_by("ordinal").only("page", "heading", "text")
    if only_cited:
        pages = {c.page for c in cited if c.page is not None}
        chunks = (
            chunks.filter(page__in=pages) if pages else chunks.filter(pk__in=[c.pk for c in cited])
        )
    # The chunker files text under "# lines" of any text document: give them back.
    headings = document.kind in _MARKDOWN_KINDS or document.kind == DocumentKind.TEXT
    shown = [
        ViewerPage(number, _page_text(list(group), headings=headings))
        for number, group in groupby(chunks, key=lambda c: c.page)
    ]
    passages: dict[int | None, list[str]] = {}
    for chunk in cited:
        passages.setdefault(chunk.page, []).append(chunk.text)
    if image_url is not None and pdf_viewable(document=document):
        _with_images(document, shown, passages, image_url)
    else:
        for page in shown:
            page.html = _page_html(document, page, passages.get(page.number, []))
    return shown


def _page_text(chunks: list[Chunk], *, headings: bool) -> str:
    """One page's text from its chunks, overlaps dropped; with `headings`, the heading
    trail each chunk was filed under comes back as Markdown headings where it changes
    (one level per step of the trail: the chunker keeps text, not levels)."""
    parts: list[str] = []
    trail: list[str] = []
    for heading, group in groupby(chunks, key=lambda c: c.heading if headings else ""):
        new = heading.split(" > ") if heading else []
        same = 0
        while same < min(len(trail), len(new)) and trail[same] == new[same]:
            same += 1
        parts += ["#" * min(depth + 1, 6) + " " + new[depth] for depth in range(same, len(new))]
        trail = new
        parts.append(merge_chunk_texts([c.text for c in group]))
    return "\n\n".join(parts)


def _with_images(
    document: Document,
    pages: list[ViewerPage],
    passages: dict[int | None, list[str]],
    image_url: ImageUrl,
) -> None:
    cited = {n: texts for n, texts in passages.items() if n is not None}
    boxes = pdf_page_highlights(document=document, passages=cited)
    for page in pages:
        if page.number is None:
            page.html = _page_html(document, page, [])
            continue
        page.image = image_url(page.number)
        page.boxes = boxes.get(page.number, [])
        page.highlighted = bool(page.boxes)
        page.html = _plain(page.text, [])


def _page_html(document: Document, page: ViewerPage, passages: list[str]) -> SafeString:
    spans = _spans(page.text, passages)
    page.highlighted = bool(spans)
    if document.kind in _MARKDOWN_KINDS:
        lines = [(_line_of(page.text, s.start), _line_of(page.text, s.end - 1)) for s in spans]
        return mark_safe(render_markdown(page.text, mark_lines=lines))  # noqa: S308 - sanitised
    return _plain(page.text, spans)


def _spans(text: str, passages: Iterable[str]) -> list[Span]:
    words = words_of(text)
    found = (passage_find(page=words, passage=passage) for passage in passages)
    return sorted((s for s in found if s is not None), key=lambda s: s.start)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0))


def _plain(text: str, spans: Sequence[Span]) -> SafeString:
    """Plain text, escaped, with each found span in <mark> (overlapping spans merged);
    shown with its line breaks kept by CSS (white-space: pre-wrap)."""
    out, last = [], 0
    for span in spans:
        start = max(span.start, last)
        if span.end <= start:
            continue
        out += [escape(text[last:start]), "<mark>", escape(text[start : span.end]), "</mark>"]
        last = span.end
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece of text is escaped above


def viewer_chunk_rows(*, document: Document, store: VectorStore) -> tuple[list[ChunkRow], bool]:
    """Every chunk of the document with whether its vector is in the vector store, and
    whether the store answered (False: it is unreachable and no state is known)."""
    chunks = list(document.chunks.order_by("ordinal"))
    try:
        present = store.present(
            collection=document.kb.collection_name, ids=[c.vector_id for c in chunks]
        )
    except (StoreUnavailable, ChromaServerError):
        return [ChunkRow(c, "") for c in chunks], False
    rows = [ChunkRow(c, "indexed" if c.vector_id in present else "missing") for c in chunks]
    return rows, True


def viewer_image_pages(*, cited: Sequence[Chunk]) -> set[int]:
    """The pages a widget citation may show as images: those its chunks are on."""
    return {c.page for c in cited if c.page}

"""The only module that uses pdfium: PDF pages as images, and where a passage sits on them.

Pages are rendered on first view and kept in storage beside the document's image assets
(under its index generation), so a second view is a file read and deleting or
re-processing the document removes them with its assets. Only documents that extraction
already read in the sandbox are rendered (the caller checks `status`), at a bounded
scale and pixel count, one page at a time, behind a lock: pdfium is not thread-safe.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ingest.models import Document, DocumentKind, DocumentStatus
from ingest.passages import passage_find, words_of
from ingest.services.files import asset_prefix

TARGET_WIDTH_PX = 1200  # wide enough for a sharp page on a laptop, small enough to load fast
MAX_SCALE = 4.0  # pixels per PDF point (72 per inch): a tiny page is not blown up further
MAX_PIXELS = 6_000_000  # per page image, about 18 MB of RGB while rendering
_MAX_CHARS = 200_000  # characters of one page's text layer read for highlighting
_lock = threading.Lock()


class PageUnavailable(LookupError):
    """The page can't be shown as an image: no such page, not a readable PDF, no file."""


@dataclass(frozen=True)
class Box:
    """A highlight rectangle in percent (0-100) of the page's width and height, from the
    page's top-left corner, so it scales with the image however wide it is drawn."""

    left: float
    top: float
    width: float
    height: float


def pdf_page_image(*, document: Document, page: int) -> str:
    """Storage name of page `page` (1-based) as a PNG about TARGET_WIDTH_PX pixels wide,
    rendered now if it isn't stored yet. Raises PageUnavailable."""
    if not pdf_viewable(document=document) or not 1 <= page <= (document.page_count or 0):
        raise PageUnavailable(page)
    prefix = asset_prefix(document.kb_id, document.pk, document.generation)
    name = f"{prefix}/pages/page-{page}.png"
    if default_storage.exists(name):
        return name
    png = _render(document, page)
    return default_storage.save(name, ContentFile(png))


def pdf_viewable(*, document: Document) -> bool:
    """Whether the document's pages can be shown as images (a processed PDF with a file)."""
    return (
        document.kind == DocumentKind.PDF
        and document.status == DocumentStatus.READY
        and bool(document.file)
    )


def pdf_page_highlights(
    *, document: Document, passages: Mapping[int, Sequence[str]]
) -> dict[int, list[Box]]:
    """Highlight boxes for each cited page: {page: boxes} of every passage (a chunk's text)
    of which at least half the words were found in one span of the page's text layer (see
    passages.py). Pages missing from the result get no highlight."""
    if not passages or not pdf_viewable(document=document):
        return {}
    found: dict[int, list[Box]] = {}
    with _lock, _open(document) as pdf:
        for number, texts in passages.items():
            if 1 <= number <= len(pdf):
                boxes = _page_boxes(pdf[number - 1], texts)
                if boxes:
                    found[number] = boxes
    return found


def _open(document: Document) -> pdfium.PdfDocument:
    with default_storage.open(str(document.file.name), "rb") as stored:
        data = stored.read()
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:  # damaged, or encrypted with a password we don't have
        raise PageUnavailable(str(exc)) from exc


def _render(document: Document, number: int) -> bytes:
    with _lock, _open(document) as pdf:
        if number > len(pdf):
            raise PageUnavailable(number)
        page = pdf[number - 1]
        width, height = page.get_size()  # PDF points
        scale = _scale(width, height)
        image = page.render(scale=scale).to_pil()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _scale(width: float, height: float) -> float:
    """Pixels per point: TARGET_WIDTH_PX wide, at most MAX_SCALE and MAX_PIXELS in all."""
    if width <= 0 or height <= 0:
        raise PageUnavailable("empty page")
    scale = min(TARGET_WIDTH_PX / width, MAX_SCALE)
    if width * height * scale * scale > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / (width * height))
    return scale


def _page_boxes(page: pdfium.PdfPage, passages: Sequence[str]) -> list[Box]:
    if page.get_rotation() % 360:  # text-space boxes would need rotating too; rare
        return []
    textpage = page.get_textpage()
    count = min(textpage.count_chars(), _MAX_CHARS)
    # One character per index, so word offsets are pdfium character indices.
    text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 32) for i in range(count))
    words = words_of(text)
    left, bottom, right, top = page.get_bbox()
    width, height = right - left, top - bottom
    boxes = []
    for passage in passages:
        span = passage_find(page=words, passage=passage)
        if span is None:
            continue
        for index in range(textpage.count_rects(span.start, span.end - span.start)):
            x0, y0, x1, y1 = textpage.get_rect(index)
            boxes.append(
                Box(
                    left=round((x0 - left) / width * 100, 3),
                    top=round((top - y1) / height * 100, 3),
                    width=round((x1 - x0) / width * 100, 3),
                    height=round((y1 - y0) / height * 100, 3),
                )
            )
    return boxes

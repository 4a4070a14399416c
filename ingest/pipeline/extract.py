"""Bytes of one document -> pages of text and the images worth keeping, per format.

Runs inside the extraction sandbox (see sandbox.py), so it may use a lot of memory or
hang on hostile input without hurting the worker; every problem that is the
document's fault is raised as IngestError with a message for the uploader.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable

from PIL import Image

from .images import ImageTooLarge, normalise_for_model, open_image
from .markup import clean_text, extract_docx, extract_html, extract_plain
from .types import Extraction, ImageData, IngestError, Limits, PageText, Progress

ProgressFn = Callable[[Progress], None]
PageFn = Callable[[PageText, tuple[ImageData, ...]], None]
_SCAN_TEXT_CHARS = 16  # a page with fewer visible characters than this has no text layer


def extract(
    data: bytes,
    *,
    kind: str,
    filename: str,
    limits: Limits,
    on_progress: ProgressFn,
    on_page: PageFn | None = None,
) -> Extraction:
    """Dispatch on the detected kind; the result's text is capped by limits.max_extracted_chars.

    on_page, if given, receives each page (with the images first seen on it) as soon as
    it is ready, so a caller can chunk and embed early pages while later ones are read.
    """
    handler = {
        "pdf": _extract_pdf,
        "image": _extract_image,
        "docx": extract_docx,
        "html": extract_html,
        "markdown": extract_plain,
        "text": extract_plain,
    }.get(kind)
    if handler is None:
        raise IngestError(f"Docent has no extractor for {kind!r} documents.")
    if kind == "pdf":
        return _extract_pdf(
            data, kind=kind, limits=limits, on_progress=on_progress, on_page=on_page
        )
    result = handler(data, kind=kind, limits=limits, on_progress=on_progress)
    _check_size(sum(len(p.text) for p in result.pages), limits)
    if on_page is not None and kind == "image":
        on_page(result.pages[0], result.images)
    elif on_page is not None:
        _send_in_parts(result, on_page, on_progress)
    return result


_PART_CHARS = 64_000  # an unpaged text is handed on in parts of about this many characters


def _send_in_parts(result: Extraction, on_page: PageFn, on_progress: ProgressFn) -> None:
    """Hand on an unpaged document's text in parts cut between paragraphs, reporting the
    bytes (of UTF-8 text) done before each, so a long text file shows real progress and is
    chunked and embedded while the rest is still on its way."""
    parts = [
        (page, part, index == 0 and page is result.pages[0])
        for page in result.pages
        for index, part in enumerate(_split_text(page.text) if page.number is None else [None])
    ]
    sizes = [len((part if part is not None else page.text).encode()) for page, part, _ in parts]
    total, done = sum(sizes), 0
    for (page, part, first), size in zip(parts, sizes, strict=True):
        on_progress(Progress("extracting", done, total, unit="bytes"))
        piece = page if part is None else PageText(None, part, page.ocr, page.image_index)
        on_page(piece, result.images if first else ())
        done += size
    on_progress(Progress("extracting", total, total, unit="bytes"))


def _split_text(text: str) -> list[str]:
    """Text cut at blank lines (never inside a fenced code block) into parts of about
    _PART_CHARS characters; a short text stays whole."""
    if len(text) <= _PART_CHARS:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size, in_fence = 0, False
    for paragraph in text.split("\n\n"):
        current.append(paragraph)
        size += len(paragraph) + 2
        fences = sum(
            1 for line in paragraph.split("\n") if line.lstrip().startswith(("```", "~~~"))
        )
        in_fence ^= fences % 2 == 1
        if size >= _PART_CHARS and not in_fence:
            parts.append("\n\n".join(current))
            current, size = [], 0
    if current:
        parts.append("\n\n".join(current))
    return parts


def _check_size(chars: int, limits: Limits) -> None:
    if chars > limits.max_extracted_chars:
        raise IngestError(
            f"This document holds {chars:,} characters of text; the limit is "
            f"{limits.max_extracted_chars:,}."
        )


# --- PDF ------------------------------------------------------------------------------------


def _extract_pdf(
    data: bytes,
    *,
    kind: str,
    limits: Limits,
    on_progress: ProgressFn,
    on_page: PageFn | None = None,
) -> Extraction:
    reader, page_list, notes = _open_pdf(data, limits)
    chars = 0
    page_total = len(page_list)
    pages: list[PageText] = []
    images: list[ImageData] = []
    sent_images = 0
    engine = None
    for index, page in enumerate(page_list):
        number = index + 1
        on_progress(Progress("extracting", index, page_total))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = clean_text(page.extract_text() or "")
        except RecursionError as exc:
            raise IngestError(f"Page {number} of the PDF has looping references.") from exc
        except Exception as exc:  # pypdf raises many types on damaged pages
            notes.append(f"page {number}: text unreadable ({type(exc).__name__})")
            text = ""
        if _is_garbled(text):
            notes.append(f"page {number}: text layer is garbled (missing fonts); ignored")
            text = ""
        page_images = _page_images(page, number, limits, notes)
        is_scan = len(re.sub(r"\s", "", text)) < _SCAN_TEXT_CHARS and bool(page_images)
        if is_scan and limits.ocr_enabled:
            on_progress(Progress("ocr", index, page_total))
            engine = engine or _ocr_engine()
            text = "\n".join(t for t in (_ocr(img, engine, limits) for img in page_images) if t)
        image_index = None
        for pil in page_images:
            if len(images) >= limits.max_images_per_document:
                break
            asset = _to_asset(pil, number, text if is_scan else "")
            if asset is not None:
                images.append(asset)
                image_index = len(images) - 1 if is_scan else image_index
        page_text = PageText(number, text.strip(), ocr=is_scan, image_index=image_index)
        pages.append(page_text)
        chars += len(page_text.text)
        _check_size(chars, limits)
        if on_page is not None:
            on_page(page_text, tuple(images[sent_images:]))
            sent_images = len(images)
    on_progress(Progress("extracting", page_total, page_total))
    title = ""
    with contextlib.suppress(Exception):  # a broken info dictionary only costs the title
        title = str((reader.metadata or {}).get("/Title") or "")
    # A salvaged file still reports the pages it says it has; the missing ones are noted.
    salvaged = any(note.startswith("recovered") for note in notes)
    page_count = max(page_total, _declared_page_count(reader, data)) if salvaged else page_total
    return Extraction(kind, page_count, tuple(pages), tuple(images), title, tuple(notes))


def _open_pdf(data: bytes, limits: Limits):
    """(reader, pages, notes); pages come from the page tree, or are salvaged if it is broken."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except (FileNotDecryptedError, NotImplementedError) as exc:
                    raise IngestError(
                        f"The PDF is encrypted and could not be opened: {exc}"
                    ) from exc
                if not opened:
                    raise IngestError(
                        "The PDF is protected by a password. Remove the password and upload it again."
                    )
            declared = _declared_page_count(reader, data)
            if declared > limits.max_pdf_pages:  # checked before walking a huge page tree
                raise IngestError(_too_many_pages(declared, limits))
            try:
                page_list = list(reader.pages)
            except (PdfReadError, KeyError, TypeError, AttributeError, ValueError) as exc:
                page_list = _salvage_pages(reader, data)
                if not page_list:
                    raise IngestError(
                        f"The PDF is damaged: its page tree is unreadable ({exc})."
                    ) from exc
                notes.append(f"recovered {len(page_list)} page(s) from a damaged page tree")
    except IngestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError, OSError) as exc:
        raise IngestError(
            f"The PDF is damaged or truncated and could not be read ({exc})."
        ) from exc
    if not page_list:
        raise IngestError("The PDF has no pages (it may be damaged or truncated).")
    if len(page_list) > limits.max_pdf_pages:
        raise IngestError(_too_many_pages(len(page_list), limits))
    return reader, page_list, notes


def _too_many_pages(count: int, limits: Limits) -> str:
    return f"This PDF has {count:,} pages; the limit is {limits.max_pdf_pages:,}."


def _declared_page_count(reader, data: bytes) -> int:
    """The page count the file claims: page tree /Count, else the linearisation /N."""
    with contextlib.suppress(Exception):
        return int(reader.trailer["/Root"]["/Pages"]["/Count"])
    return _linearization(data).get("N", 0)


def _linearization(data: bytes) -> dict[str, int]:
    """/N (page count) and /O (first page object) of a linearised PDF's header dictionary."""
    match = re.search(rb"<<\s*/Linearized[^>]*>>", data[:4096])
    if not match:
        return {}
    return {k.decode(): int(v) for k, v in re.findall(rb"/([NO])\s+(\d+)", match.group(0))}


def _salvage_pages(reader, data: bytes) -> list:
    """Page objects found by scanning every object, for files whose page tree is wiped."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject, IndirectObject

    numbers = sorted({(num, gen) for gen, objs in reader.xref.items() for num in objs})
    first = _linearization(data).get("O", 0)
    found = []
    for num, gen in numbers:
        with contextlib.suppress(Exception):
            obj = reader.get_object(IndirectObject(num, gen, reader))
            if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
                page = PageObject(reader, IndirectObject(num, gen, reader))
                page.update(obj)
                found.append((num != first, num, page))
    return [page for _, _, page in sorted(found, key=lambda item: item[:2])]


def _is_garbled(text: str) -> bool:
    """Text from a page whose font maps are gone comes out as replacement characters."""
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < 20:
        return False
    bad = sum(1 for ch in visible if ch == "\ufffd" or 0xE000 <= ord(ch) <= 0xF8FF)
    return bad / len(visible) > 0.3


def _page_images(page, number: int, limits: Limits, notes: list[str]) -> list[Image.Image]:
    """Decode a page's images that are big enough to matter and small enough to be safe."""
    found: list[Image.Image] = []
    try:
        keys = list(page.images.keys())
    except Exception as exc:
        notes.append(f"page {number}: images unreadable ({type(exc).__name__})")
        return found
    for key in keys[: limits.max_images_per_document]:
        width, height = _declared_size(page, key)
        if width and height:
            if width * height > limits.max_image_pixels:
                notes.append(
                    f"page {number}: skipped a {width}x{height} image over the pixel limit"
                )
                continue
            if min(width, height) < limits.min_asset_side_px:
                continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pil = page.images[key].image
            pil.load()
        except Exception as exc:
            notes.append(f"page {number}: an image could not be decoded ({type(exc).__name__})")
            continue
        if (
            min(pil.size) >= limits.min_asset_side_px
            and pil.width * pil.height <= limits.max_image_pixels
        ):
            found.append(pil)
    return found


def _declared_size(page, key: str) -> tuple[int, int]:
    """Width and height an image XObject declares, read before anything is decoded."""
    try:
        node = page["/Resources"]
        parts = [p for p in key.split("/") if p]
        for i, name in enumerate(parts):
            obj = node["/XObject"]["/" + name].get_object()
            if i == len(parts) - 1:
                return int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
            node = obj["/Resources"]
    except Exception:  # inline images and odd trees: decode to learn the size
        return 0, 0
    return 0, 0


# --- Images -----------------------------------------------------------------------------------


def _extract_image(
    data: bytes, *, kind: str, limits: Limits, on_progress: ProgressFn
) -> Extraction:
    try:
        pil = open_image(data, max_pixels=limits.max_image_pixels)
    except ImageTooLarge as exc:
        raise IngestError(str(exc)) from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise IngestError(f"The image could not be decoded ({exc}).") from exc
    text = ""
    if limits.ocr_enabled:
        on_progress(Progress("ocr", 0, 1))
        text = _ocr(pil, _ocr_engine(), limits)
    asset = _to_asset(pil, None, text, keep_small=True)
    if asset is None:
        raise IngestError("The image could not be re-encoded for the model.")
    on_progress(Progress("ocr", 1, 1))
    return Extraction(kind, None, (PageText(None, text, ocr=True, image_index=0),), (asset,))


def _ocr_engine():
    from .ocr import get_engine

    return get_engine()


def _ocr(pil: Image.Image, engine, limits: Limits) -> str:
    from .ocr import ocr_image

    return clean_text(
        ocr_image(pil, engine=engine, min_text_height_px=limits.ocr_min_text_height_px).text
    )


def _to_asset(pil: Image.Image, page: int | None, ocr_text: str, keep_small: bool = False):
    try:
        payload, mime, width, height = normalise_for_model(pil)
    except (OSError, ValueError):
        return None
    if not keep_small and min(width, height) < 8:
        return None
    return ImageData(payload, mime, width, height, page, ocr_text)

"""Frozen records passed between ingest stages: detect -> extract (-> OCR) -> chunk -> embed."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(Exception):
    """A problem with one document, worded for the person who uploaded it.

    Permanent: processing the same bytes again would fail the same way.
    """

    permanent = True


class ExtractionInterrupted(IngestError):
    """Reading was cut short (time limit, memory limit, a crash): another try may succeed."""

    permanent = False


def _unit(size: int) -> tuple[int, str]:
    """(bytes per unit, unit name) for showing `size` bytes."""
    divisor = 1
    for unit in ("KB", "MB", "GB", "TB"):
        divisor *= 1024
        if size < divisor * 1024 or unit == "TB":
            return divisor, unit
    raise AssertionError("unreachable")


def _in_unit(size: int, divisor: int) -> str:
    value = size / divisor
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def human_bytes(size: int) -> str:
    """A size in bytes for people: "980 bytes", "36 KB", "1.2 MB", "110 MB" (1 KB = 1024 bytes)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size:,} bytes"
    divisor, unit = _unit(size)
    return f"{_in_unit(size, divisor).removesuffix('.0')} {unit}"  # "3 MB", not "3.0 MB"


def human_bytes_of(done: int, total: int) -> str:
    """ "1.2 of 3.0 MB": bytes done out of a total, both in the total's unit."""
    if total < 1024:
        return f"{done:,} of {human_bytes(total)}"
    divisor, unit = _unit(total)
    value = total / divisor
    shown = f"{done / divisor:.1f}" if value < 10 else f"{done / divisor:,.0f}"
    return f"{shown} of {_in_unit(total, divisor)} {unit}"


def size_over_limit(size: int, limit: int, *, what: str = "This file") -> str:
    """ "This file is 110 MB; the limit is 100 MB." (sizes in bytes); "This file is just over
    the 100 MB limit." when both would read the same."""
    shown, cap = human_bytes(size), human_bytes(limit)
    if shown == cap:
        return f"{what} is just over the {cap} limit."
    return f"{what} is {shown}; the limit is {cap}."


def human_seconds(seconds: float) -> str:
    """A duration in seconds for people: "1 s", "45 s", "15 minutes"."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"


@dataclass(frozen=True)
class Detected:
    kind: str  # one of ingest.models.DocumentKind values
    mime_type: str


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one hostile document from hurting the worker."""

    max_pdf_pages: int
    max_image_pixels: int
    max_extracted_chars: int
    timeout_seconds: float
    memory_limit_mb: int
    ocr_enabled: bool = True
    ocr_min_text_height_px: int = 32
    max_images_per_document: int = 64
    min_asset_side_px: int = 48
    max_docx_uncompressed_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class ImageData:
    """An image worth keeping for the model: already normalised to PNG or JPEG bytes."""

    data: bytes
    mime_type: str
    width: int  # pixels
    height: int  # pixels
    page: int | None
    ocr_text: str = ""


@dataclass(frozen=True)
class PageText:
    number: int | None  # 1-based page number, None for unpaged formats
    text: str
    ocr: bool = False  # text came from OCR rather than a text layer
    image_index: int | None = None  # the Extraction.images entry this text was read from


@dataclass(frozen=True)
class ExtractionEnd:
    """What a finished extraction says about the whole document (its pages came before)."""

    kind: str
    page_count: int | None
    title: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Extraction:
    """A whole extraction at once: what `extract` returns inside the sandbox."""

    kind: str
    page_count: int | None
    pages: tuple[PageText, ...]
    images: tuple[ImageData, ...] = ()
    title: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    page: int | None
    heading: str
    text: str
    embed_tokens: int  # word pieces of the embedder, heading included
    image_index: int | None = None
    llm_tokens: int = 0  # Ministral tokens of `text`, what packing budgets with

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the heading trail gives short chunks their context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class Progress:
    stage: str
    done: int
    total: int
    unit: str = "pages"  # what done and total count: "pages" or "bytes" (of extracted text)

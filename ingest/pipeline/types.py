"""Frozen records passed between ingest stages: detect -> extract (-> OCR) -> chunk -> embed."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(Exception):
    """A problem with one document, worded for the person who uploaded it."""


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

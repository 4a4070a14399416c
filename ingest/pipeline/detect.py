"""Decide what a file is from its bytes, and clean up the name it was uploaded under.

The extension is only a tie-breaker between text formats (Markdown vs plain text);
a PDF renamed to .txt is still a PDF and an executable renamed to .pdf is refused.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import PurePosixPath

import filetype

from .types import Detected, IngestError

SNIFF_BYTES = 64 * 1024
IMAGE_MIME_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
_OFFICE_NAMES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "an Excel workbook",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "a PowerPoint deck",
    "application/vnd.oasis.opendocument.text": "an OpenDocument text file",
    "application/msword": "a legacy Word (.doc) file",
    "application/vnd.ms-excel": "a legacy Excel (.xls) file",
}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)
_MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd", ".mdx"}
_HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
# File name endings the documents page accepts before uploading (a browser-side courtesy:
# detect_kind decides from the content). Plain text travels under many names.
ACCEPTED_EXTENSIONS = (
    ".pdf",
    ".docx",
    *sorted(_MARKDOWN_EXTENSIONS),
    *sorted(_HTML_EXTENSIONS),
    ".txt",
    ".text",
    ".log",
    ".csv",
    ".tsv",
    ".json",
    ".rst",
    ".yaml",
    ".yml",
    ".xml",
    ".ini",
    ".cfg",
    ".conf",
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".gif",
)
# Bidi overrides and isolates can disguise an extension ("evil\u202egnp.exe").
_INVISIBLE = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def detect_kind(data: bytes, filename: str) -> Detected:
    """Classify a document from its first bytes; raise IngestError if Docent can't read it."""
    if not data:
        raise IngestError("This file is empty.")
    head = data[:SNIFF_BYTES]
    if b"%PDF-" in head[:1024]:
        return Detected("pdf", "application/pdf")
    guess = filetype.guess(head)
    if guess is not None:
        if guess.mime in IMAGE_MIME_TYPES:
            return Detected("image", guess.mime)
        if guess.mime.startswith("image/"):
            raise IngestError(
                f"Unsupported image format ({guess.mime}). Upload PNG, JPEG, WEBP or GIF."
            )
        if guess.mime == "application/zip" or guess.extension in {"docx", "xlsx", "pptx", "odt"}:
            return _detect_zip(data, guess.mime)
        if guess.mime in _OFFICE_NAMES:
            raise IngestError(f"Unsupported file type: this is {_OFFICE_NAMES[guess.mime]}.")
        raise IngestError(
            f"Unsupported file type: the content is {guess.mime}. "
            "Docent reads PDF, DOCX, Markdown, plain text, HTML and PNG/JPEG/WEBP/GIF images."
        )
    if _looks_like_text(head):
        suffix = PurePosixPath(filename.lower()).suffix
        if _HTML_START.match(head.lstrip(b"\xef\xbb\xbf")) or suffix in _HTML_EXTENSIONS:
            return Detected("html", "text/html")
        if suffix in _MARKDOWN_EXTENSIONS:
            return Detected("markdown", "text/markdown")
        return Detected("text", "text/plain")
    raise IngestError(
        "Unsupported file type: the content is binary data Docent does not recognise. "
        "Docent reads PDF, DOCX, Markdown, plain text, HTML and PNG/JPEG/WEBP/GIF images."
    )


def _detect_zip(head: bytes, mime: str) -> Detected:
    """Which Office format a ZIP is, from its entry names.

    Only the first bytes are at hand, so when the central directory (at the end) is out
    of reach the local file headers' names decide; the worker validates the whole file.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(head)) as archive:
            names = "\n".join(archive.namelist()).encode()
    except zipfile.BadZipFile:
        names = head
    if b"word/document.xml" in names or b"word/" in names:
        return Detected(
            "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )
    if b"xl/workbook.xml" in names or b"xl/" in names:
        raise IngestError("Unsupported file type: this is an Excel workbook.")
    if b"ppt/presentation.xml" in names or b"ppt/" in names:
        raise IngestError("Unsupported file type: this is a PowerPoint deck.")
    raise IngestError("Unsupported file type: this is a ZIP archive, not a document.")


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with BOM
    if b"\x00" in head:
        return False
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return control <= max(2, len(head) // 1000)


def decode_text(data: bytes) -> str:
    """Bytes of a text document to str: UTF-8 or UTF-16 by BOM, else the likeliest charset."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1024 * 1024]).best()
    # Short Western text is ambiguous to any detector; Windows-1252 is by far the most
    # common legacy encoding, so it wins whenever the detector finds it plausible too.
    if best is None or "cp1252" in best.could_be_from_charset or len(data) < 64:
        return data.decode("cp1252", errors="replace")
    return data.decode(best.encoding, errors="replace")


def sanitize_filename(name: str, *, max_length: int = 200) -> str:
    """A display name safe to show and store: no directories, controls or bidi tricks.

    Keeps the extension when the name must be shortened (max_length in characters).
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(
        ch
        for ch in name
        if ch not in _INVISIBLE and unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if name in {"", ".", ".."}:
        return "unnamed"
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: max_length - len(ext) - 1] + "." + ext
        else:
            name = name[:max_length]
    return name

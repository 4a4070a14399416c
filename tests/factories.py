"""Builders for test documents, made at run time so every case is visible in code."""

from __future__ import annotations

import io
import zipfile

from PIL import Image, ImageDraw, ImageFont


def text_pdf(pages: list[str], *, password: str | None = None, algorithm: str = "AES-256") -> bytes:
    """A PDF with one text page per entry (real text layer, Helvetica)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    data = bytes(pdf.output())
    if password is None:
        return data
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_image(lines: list[str], *, size: int = 22, width: int = 900, fmt: str = "PNG") -> bytes:
    """A screenshot-like image: dark text on white, Pillow's bundled font."""
    font = ImageFont.load_default(size=size)
    height = (size + 12) * len(lines) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 20 + i * (size + 12)), line, fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    if fmt == "GIF":
        image = image.convert("P")
    image.save(out, format=fmt)
    return out.getvalue()


def scanned_pdf(lines_per_page: list[list[str]]) -> bytes:
    """An image-only PDF, like a scanner makes: no text layer at all."""
    pages = [
        Image.open(io.BytesIO(text_image(lines, size=28, width=1240))) for lines in lines_per_page
    ]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    return out.getvalue()


def docx(blocks: list[tuple[str, str]]) -> bytes:
    """A Word document from (style, text) pairs, style being 'h1', 'h2', 'p' or 'li'."""
    import docx as python_docx

    document = python_docx.Document()
    for style, text in blocks:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1]))
        elif style == "li":
            document.add_paragraph(text, style="List Bullet")
        else:
            document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(expanded_bytes: int = 300 * 1024 * 1024) -> bytes:
    """A valid-looking DOCX whose document.xml inflates to `expanded_bytes` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b" " * (1024 * 1024)
            for _ in range(expanded_bytes // len(block)):
                member.write(block)
    return out.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A tiny PNG that claims side x side pixels (1-bit, so it compresses to almost nothing)."""
    out = io.BytesIO()
    Image.new("1", (side, side), 1).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A hand-made PDF from object bodies (numbered from 1), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def looping_pdf() -> bytes:
    """The page tree contains itself: naive walkers recurse forever."""
    return _pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]
    )


def huge_page_count_pdf(count: int = 5_000_000) -> bytes:
    """One real page under a page tree that claims millions."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


def deeply_nested_pdf(depth: int = 200_000) -> bytes:
    """An object nested so deep that recursive parsers blow their stack."""
    nested = b"[" * depth + b"]" * depth
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Junk " + nested + b" >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
        ]
    )


def broken_xref_pdf(pages: list[str]) -> bytes:
    """A real text PDF whose xref offsets all point to the wrong place (readers must rebuild)."""
    import re

    data = text_pdf(pages)
    return re.sub(rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m.group(1)) + 7), data)


def gif_bomb() -> bytes:
    """A GIF whose header claims a 60000 x 60000 canvas."""
    header = b"GIF89a" + (60000).to_bytes(2, "little") * 2 + b"\x00\x00\x00"
    image = (
        b"\x2c"
        + b"\x00\x00\x00\x00"
        + (60000).to_bytes(2, "little") * 2
        + b"\x00"
        + b"\x02\x02\x44\x01\x00"
    )
    return header + image + b"\x3b"


def public_kb(name: str):
    """A knowledge base anyone may read (created if missing), as stored."""
    from ingest.models import KnowledgeBase
    from ingest.services import kb_get_or_create

    kb = kb_get_or_create(name=name)
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.PUBLIC)
    kb.refresh_from_db()
    return kb

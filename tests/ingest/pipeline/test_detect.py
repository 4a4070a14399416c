from __future__ import annotations

import pytest

from ingest.pipeline.detect import detect_kind, sanitize_filename
from ingest.pipeline.types import IngestError
from tests import factories


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (factories.text_pdf(["hello"]), "report.txt", "pdf"),  # content wins over extension
        (factories.text_image(["hi"]), "shot.pdf", "image"),
        (factories.text_image(["hi"], fmt="JPEG"), "x", "image"),
        (factories.text_image(["hi"], fmt="WEBP"), "x", "image"),
        (factories.text_image(["hi"], fmt="GIF"), "x", "image"),
        (factories.docx([("p", "hello")]), "file.bin", "docx"),
        (b"<!DOCTYPE html><html><body><p>x</p></body></html>", "page.txt", "html"),
        (b"# Title\n\nbody", "notes.md", "markdown"),
        (b"plain words", "notes.txt", "text"),
        ("caf\u00e9 na\u00efve".encode("utf-16"), "u16.txt", "text"),
    ],
)
def test_kind_comes_from_content(data, name, kind):
    assert detect_kind(data, name).kind == kind


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "Unsupported file type"),
        (b"MZ\x90\x00" + bytes(range(256)) * 4, "Unsupported file type"),
        (b"\x00\x01\x02\x03" * 100, "binary data"),
    ],
)
def test_unsupported_content_is_refused_clearly(data, message):
    with pytest.raises(IngestError, match=message):
        detect_kind(data, "innocent.pdf")


def test_other_office_formats_are_named():
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(IngestError, match="Excel"):
        detect_kind(out.getvalue(), "sheet.docx")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.pdf", "evil.pdf"),
        ("report\u202egnp.exe", "reportgnp.exe"),  # bidi override removed
        ("  .hidden  name .md", "hidden name .md"),
        ("bad\x00name\x07.txt", "badname.txt"),
        ("Cafe\u0301.md", "Caf\u00e9.md"),  # NFC
        ("..", "unnamed"),
        ("", "unnamed"),
        ("a" * 300 + ".pdf", "a" * 196 + ".pdf"),
    ],
)
def test_filenames_are_sanitised(raw, clean):
    assert sanitize_filename(raw) == clean

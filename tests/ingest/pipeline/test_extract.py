"""Extraction through the real sandbox: each format, the shared PDF corpus, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.pipeline.sandbox import ExtractedPage, iter_extraction
from ingest.pipeline.types import Extraction, ExtractionEnd, IngestError, Limits, Progress
from tests import factories

LIMITS = Limits(
    max_pdf_pages=500,
    max_image_pixels=64_000_000,
    max_extracted_chars=10_000_000,
    timeout_seconds=120,
    memory_limit_mb=4096,
)


def run(tmp_path: Path, data: bytes, kind: str, limits: Limits = LIMITS, name: str = "doc"):
    """The whole extraction, gathered from the sandbox's stream, and its progress reports."""
    path = tmp_path / name
    path.write_bytes(data)
    seen, pages, images = [], [], []
    for event in iter_extraction(path, kind=kind, filename=name, limits=limits):
        if isinstance(event, Progress):
            seen.append(event)
        elif isinstance(event, ExtractedPage):
            pages.append(event.page)
            images.extend(event.images)
        else:
            assert isinstance(event, ExtractionEnd)
            end = event
    result = Extraction(
        end.kind, end.page_count, tuple(pages), tuple(images), end.title, end.warnings
    )
    return result, seen


def test_pdf_text_is_extracted_per_page_with_progress(tmp_path):
    data = factories.text_pdf(["Alpha page talks about apples.", "Beta page mentions bananas."])
    result, seen = run(tmp_path, data, "pdf")
    assert result.page_count == 2
    assert [p.number for p in result.pages] == [1, 2]
    assert "apples" in result.pages[0].text and "bananas" in result.pages[1].text
    assert seen[-1].done == seen[-1].total == 2


def test_pdf_with_empty_user_password_opens_including_aes(tmp_path):
    for algorithm in ("AES-256", "AES-128", "RC4-128"):
        data = factories.text_pdf(["Encrypted but readable."], password="", algorithm=algorithm)
        result, _ = run(tmp_path, data, "pdf")
        assert "readable" in result.pages[0].text, algorithm


def test_pdf_with_a_password_fails_clearly(tmp_path):
    data = factories.text_pdf(["Secret."], password="hunter2")
    with pytest.raises(IngestError, match="protected by a password"):
        run(tmp_path, data, "pdf")


def test_scanned_pdf_pages_are_ocrd_and_kept_as_images(tmp_path):
    data = factories.scanned_pdf([["Scanned invoice number 4471"], ["Payment due in thirty days"]])
    result, seen = run(tmp_path, data, "pdf")
    assert result.page_count == 2
    assert all(page.ocr for page in result.pages)
    assert "4471" in result.pages[0].text
    assert "thirty" in result.pages[1].text.lower()
    assert [img.page for img in result.images] == [1, 2]
    assert any(p.stage == "ocr" for p in seen)


def test_truncated_pdf_fails_clearly(tmp_path):
    data = factories.text_pdf(["x" * 2000] * 3)
    with pytest.raises(IngestError, match=r"damaged or truncated|no pages"):
        run(tmp_path, data[:400], "pdf")


def test_pdf_over_the_page_limit_fails_clearly(tmp_path):
    data = factories.text_pdf(["one", "two", "three"])
    limits = Limits(**{**LIMITS.__dict__, "max_pdf_pages": 2})
    with pytest.raises(IngestError, match="3 pages; the limit is 2"):
        run(tmp_path, data, "pdf", limits)


def test_extraction_past_the_time_limit_is_stopped(tmp_path, shared):
    limits = Limits(**{**LIMITS.__dict__, "timeout_seconds": 1.0})
    data = (shared / "corpora/manuals/gnuplot.pdf").read_bytes()
    with pytest.raises(IngestError, match="longer than the 1 s limit"):
        run(tmp_path, data, "pdf", limits)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_screenshots_are_ocrd_and_kept(tmp_path, fmt):
    data = factories.text_image(["Error 503: service unavailable", "Retry in 30 seconds"], fmt=fmt)
    result, _ = run(tmp_path, data, "image")
    text = result.pages[0].text.lower()
    assert "unavailable" in text and "retry" in text
    (image,) = result.images
    assert image.mime_type in {"image/png", "image/jpeg"} and image.width == 900


def test_large_screenshot_is_downscaled_for_the_model(tmp_path):
    data = factories.text_image(["Wide dashboard"], size=60, width=4000)
    result, _ = run(tmp_path, data, "image")
    assert max(result.images[0].width, result.images[0].height) == 1540


def test_decompression_bomb_is_refused(tmp_path):
    with pytest.raises(IngestError, match="decompression bomb"):
        run(tmp_path, factories.bomb_png(), "image")


def test_docx_keeps_headings_lists_and_tables(tmp_path):
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Setup guide", level=1)
    document.add_paragraph("Install the agent first.")
    document.add_paragraph("Open the firewall", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text = "Port"
    table.rows[0].cells[1].text = "Use"
    table.rows[1].cells[0].text = "8443"
    table.rows[1].cells[1].text = "HTTPS | admin"
    out = tmp_path / "in.docx"
    document.save(out)
    result, _ = run(tmp_path, out.read_bytes(), "docx")
    text = result.pages[0].text
    assert "# Setup guide" in text
    assert "- Open the firewall" in text
    # A real Markdown table: header row, separator, pipes in a cell kept as text.
    assert "| Port | Use |\n| --- | --- |\n| 8443 | HTTPS \\| admin |" in text


def test_docx_zip_bomb_is_refused(tmp_path):
    with pytest.raises(IngestError, match="zip bomb"):
        run(tmp_path, factories.zip_bomb_docx(), "docx")


def test_html_drops_scripts_and_keeps_structure(tmp_path):
    html = b"""<html><head><title>FAQ</title><script>alert('x')</script></head>
    <body><nav>menu</nav><h1>Billing</h1><p>Invoices are sent <b>monthly</b>.</p>
    <ul><li>Card</li><li>Transfer</li></ul></body></html>"""
    result, _ = run(tmp_path, html, "html")
    text = result.pages[0].text
    assert result.title == "FAQ"
    assert "# Billing" in text and "Invoices are sent monthly." in text and "- Transfer" in text
    assert "alert" not in text and "menu" not in text


def test_html_tables_become_markdown_tables_and_pre_a_fenced_block(tmp_path):
    html = b"""<html><body><h2>Ports</h2>
    <table><caption>Open ports</caption><tr><th>Port</th><th>Use</th></tr>
    <tr><td>8443</td><td><p>HTTPS</p></td></tr></table>
    <pre><code class="language-sh">docent serve \\
  --port 8443</code></pre></body></html>"""
    result, _ = run(tmp_path, html, "html")
    text = result.pages[0].text
    assert "## Ports" in text
    assert "Open ports\n\n| Port | Use |\n| --- | --- |\n| 8443 | HTTPS |" in text
    assert "```sh\ndocent serve \\\n  --port 8443\n```" in text


def test_markdown_and_text_decode_any_common_encoding(tmp_path):
    result, _ = run(tmp_path, "---\ntitle: x\n---\n# Caf\u00e9\n".encode(), "markdown")
    assert result.pages[0].text == "# Caf\u00e9"
    result, _ = run(tmp_path, "na\u00efve r\u00e9sum\u00e9".encode("cp1252"), "text")
    assert result.pages[0].text == "na\u00efve r\u00e9sum\u00e9"


def test_text_over_the_character_limit_fails_clearly(tmp_path):
    limits = Limits(**{**LIMITS.__dict__, "max_extracted_chars": 1000})
    with pytest.raises(IngestError, match="limit is 1,000"):
        run(tmp_path, b"word " * 1000, "text", limits)


def _samples():
    root = Path(__file__).resolve().parents[3].parent / "shared/corpora/pdf-samples"
    if not (root / "files.json").exists():
        return []
    return json.loads((root / "files.json").read_text())["data"]


@pytest.mark.parametrize("sample", _samples() or [{"path": "missing"}], ids=lambda s: s["path"])
def test_shared_pdf_samples_ingest_with_the_right_page_count(tmp_path, shared, sample):
    data = (shared / "corpora/pdf-samples" / sample["path"]).read_bytes()
    if sample["encrypted"]:
        with pytest.raises(IngestError, match="password"):
            run(tmp_path, data, "pdf")
        return
    result, _ = run(tmp_path, data, "pdf")
    assert result.page_count == sample["pages"]
    assert len(result.pages) <= sample["pages"]
    assert len(result.pages) == sample["pages"] or result.warnings  # salvage is always noted

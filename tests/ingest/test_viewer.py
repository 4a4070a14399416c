"""The document viewer: real PDFs rendered and highlighted, text documents marked, the
chunk inspector for staff only, and citations to gone documents explained."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.test import Client

from assistant.models import Widget
from assistant.widgets import WidgetSession, citation_link
from ingest.models import Chunk
from ingest.passages import passage_find, words_of
from ingest.pdfpages import pdf_page_highlights, pdf_page_image
from ingest.services import document_delete, kb_get_or_create
from ingest.store import get_store
from tests import factories

pytestmark = pytest.mark.django_db

PAGES = [
    "Chapter one. The pump must be primed before the first start, with two litres of water.",
    "Chapter two. To clean the filter, close the inlet valve, unscrew the cap and rinse the "
    "mesh under running water until no sand remains.",
]
GUIDE = """# Pump guide

Read this first.

## Cleaning

To clean the filter, close the inlet valve and rinse the mesh.

| Part | Interval |
| --- | --- |
| Filter | weekly |
"""


def staff_client() -> Client:
    user = get_user_model().objects.create_user("boss", password="x-pass-123", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manual(ingest_text):
    return ingest_text(factories.public_kb("Pumps"), "pump.pdf", factories.text_pdf(PAGES))


def highlight_rects(html: str) -> list[str]:
    return re.findall(r'<rect class="highlight"[^>]*>', html)


# --- matching ---------------------------------------------------------------------------------


def test_a_passage_is_found_only_when_at_least_half_its_words_match():
    page = words_of("Alpha beta gamma. To clean the filter, close the inlet valve now. Omega.")
    span = passage_find(page=page, passage="to clean the filter close the inlet valve")
    assert span is not None and span.matched == 1.0
    text = "Alpha beta gamma. To clean the filter, close the inlet valve now. Omega."
    assert text[span.start : span.end] == "To clean the filter, close the inlet valve"
    # Half the words right: still found; fewer than half: nothing.
    assert passage_find(page=page, passage="clean the filter zebra yak quokka") is not None
    assert passage_find(page=page, passage="clean the zebra yak quokka lemur") is None
    assert passage_find(page=page, passage="") is None


# --- PDF pages ----------------------------------------------------------------------------------


def test_a_pdf_citation_shows_page_images_with_the_passage_highlighted(manual):
    chunk = Chunk.objects.get(document=manual, page=2)
    response = Client().get(f"/documents/{manual.pk}/?page=2&chunks={chunk.pk}")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="/documents/{manual.pk}/pages/1.png"' in html
    assert 'alt="Page 2 of pump.pdf"' in html and "Text of this page" in html
    page_two = html[html.index('id="page-2"') :]
    assert highlight_rects(page_two) and "Cited passage highlighted" in page_two
    assert not highlight_rects(html[: html.index('id="page-2"')])  # page 1 cites nothing
    x = float(re.search(r'x="([\d.]+)%"', highlight_rects(page_two)[0]).group(1))
    assert 0 <= x < 100


def test_a_wrong_passage_gets_no_highlight(manual):
    assert pdf_page_highlights(document=manual, passages={2: [PAGES[1]]})
    wrong = "Invoices are paid monthly by bank transfer to the supplier account."
    assert pdf_page_highlights(document=manual, passages={2: [wrong]}) == {}


def test_chunks_of_another_document_and_malformed_ids_are_ignored(manual, ingest_text):
    # The same text in another knowledge base: its chunk would match, but is not ours.
    other = ingest_text(factories.public_kb("Other"), "other.pdf", factories.text_pdf(PAGES))
    foreign = Chunk.objects.get(document=other, page=2)
    for chunks in (str(foreign.pk), "abc,,-1,99999999999999999999", "\u0663", "1" * 5000):
        response = Client().get(f"/documents/{manual.pk}/?page=2&chunks={chunks}")
        assert response.status_code == 200
        assert not highlight_rects(response.content.decode())


def test_page_images_are_rendered_once_then_served_from_storage(manual):
    client = Client()
    response = client.get(f"/documents/{manual.pk}/pages/1.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    png = b"".join(response.streaming_content)
    assert png.startswith(b"\x89PNG")
    width = int.from_bytes(png[16:20], "big")
    assert 1100 <= width <= 1300  # about 1200 px wide
    name = pdf_page_image(document=manual, page=1)
    assert default_storage.exists(name) and f"/g{manual.generation}/" in name
    assert client.get(f"/documents/{manual.pk}/pages/3.png").status_code == 404
    assert client.get(f"/documents/{manual.pk}/pages/0.png").status_code == 404


def test_page_images_need_the_same_access_as_the_document(ingest_text):
    kb = kb_get_or_create(name="Private")
    document = ingest_text(kb, "secret.pdf", factories.text_pdf(["Secret roadmap."]))
    assert Client().get(f"/documents/{document.pk}/pages/1.png").status_code == 404
    allowed = staff_client().get(f"/documents/{document.pk}/pages/1.png")
    assert allowed.status_code == 200
    allowed.close()


# --- text documents ---------------------------------------------------------------------------


def test_markdown_keeps_headings_and_tables_and_marks_the_cited_passage(ingest_text):
    document = ingest_text(factories.public_kb("Guides"), "guide.md", GUIDE)
    cited = Chunk.objects.filter(document=document, text__contains="inlet valve").first()
    html = Client().get(f"/documents/{document.pk}/?chunks={cited.pk}").content.decode()
    assert "<h1>Pump guide</h1>" in html and "<h2>Cleaning</h2>" in html
    assert "<table>" in html and re.search(r"<th>(<mark>)?Part", html)
    assert "<mark>To clean the filter" in html
    assert "# Pump" not in html
    plain = Client().get(f"/documents/{document.pk}/").content.decode()
    assert "<mark>" not in plain


def test_plain_text_is_escaped_not_rendered(ingest_text):
    document = ingest_text(
        factories.public_kb("Notes"), "notes.txt", "# not a heading\n\n<b>bold</b> text"
    )
    html = Client().get(f"/documents/{document.pk}/").content.decode()
    assert "# not a heading" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<h1>not a heading" not in html


def test_a_docx_is_shown_with_its_headings_and_lists(ingest_text):
    data = factories.docx([("h1", "Setup"), ("p", "Install it."), ("li", "Open port 8443")])
    document = ingest_text(factories.public_kb("Word"), "setup.docx", data)
    html = Client().get(f"/documents/{document.pk}/").content.decode()
    assert "<h1>Setup</h1>" in html and "<li>Open port 8443</li>" in html


# --- the chunk inspector, the back link, gone documents ----------------------------------------


def test_only_staff_get_the_chunk_inspector(manual):
    anonymous = Client().get(f"/documents/{manual.pk}/?view=chunks").content.decode()
    assert "chunk-table" not in anonymous and 'class="page-image"' in anonymous
    staff = staff_client().get(f"/documents/{manual.pk}/?view=chunks").content.decode()
    assert staff.count('data-vector="indexed"') == manual.chunk_count >= 2
    assert 'class="tokens"' in staff


def test_the_inspector_says_when_the_vector_store_is_unreachable(manual, monkeypatch):
    from ingest.store import ChromaStore, StoreUnavailable

    # The real store, pointed at a port where nothing listens.
    unreachable = ChromaStore(url="http://127.0.0.1:9")
    monkeypatch.setattr("ingest.views.get_store", lambda: unreachable)
    try:
        html = staff_client().get(f"/documents/{manual.pk}/?view=chunks").content.decode()
    except StoreUnavailable:  # pragma: no cover - the failure this test guards against
        pytest.fail("the inspector failed instead of saying the store is unreachable")
    assert "Vector store unreachable" in html and 'data-vector="unknown"' in html


def test_the_back_link_leads_staff_to_the_documents_page_and_readers_to_chat(manual):
    staff = staff_client().get(f"/documents/{manual.pk}/").content.decode()
    assert f'href="/kb/{manual.kb.slug}/documents/">← Pumps documents' in staff
    reader = Client().get(f"/documents/{manual.pk}/").content.decode()
    assert f'href="/?kb={manual.kb.slug}">← Pumps' in reader


def test_a_citation_to_a_deleted_or_unreadable_document_explains_it_is_gone(ingest_text):
    kb = factories.public_kb("Gone")
    document = ingest_text(kb, "old.md", "# Old\n\nOld text.")
    pk = document.pk
    document_delete(document=document, store=get_store())
    gone = Client().get(f"/documents/{pk}/?page=1&chunks=1")
    assert gone.status_code == 404
    assert b"no longer in the knowledge base: it was deleted or replaced" in gone.content
    private = ingest_text(kb_get_or_create(name="Hidden"), "hidden.md", "# Hidden\n\nText.")
    hidden = Client().get(f"/documents/{private.pk}/")
    # The same page either way (only the sign-in link's return address differs).
    same = hidden.content.replace(
        f"/documents/{private.pk}/".encode(), f"/documents/{pk}/".encode()
    )
    assert hidden.status_code == 404 and same == gone.content.replace(
        b"%3Fpage%3D1%26chunks%3D1", b""
    )


# --- the widget -------------------------------------------------------------------------------


def test_a_widget_citation_shows_only_its_page_images(manual):
    widget = Widget.objects.create(
        name="Help", kb=manual.kb, allowed_origins="https://shop.example"
    )
    chunk = Chunk.objects.get(document=manual, page=2)
    source = {"document_id": manual.pk, "pages": [2], "chunk_ids": [chunk.pk]}
    link = citation_link(session=WidgetSession(widget, "https://shop.example", "v"), source=source)
    path = link.split("#")[0]
    html = Client().get(path).content.decode()
    assert f'src="{path}pages/2.png"' in html and highlight_rects(html)
    assert "pages/1.png" not in html
    image = Client().get(f"{path}pages/2.png")
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")
    assert Client().get(f"{path}pages/1.png").status_code == 404  # not cited
    forged = path.replace("/cite/", "/cite/x")
    assert Client().get(f"{forged}pages/2.png").status_code == 404


def test_a_screenshot_is_shown_with_its_text_beneath(ingest_text):
    image = factories.text_image(["Update failed: not enough storage"])
    document = ingest_text(factories.public_kb("Shots"), "dialog.png", image)
    html = Client().get(f"/documents/{document.pk}/").content.decode()
    asset = document.assets.get()
    picture = html.index(f'src="/assets/{asset.pk}"')
    assert "Text in the image" in html[picture:] and "storage" in html[picture:].lower()

"""In headless Chromium: the document viewer shows real pages, highlights what was cited,
keeps documents' structure, lets staff inspect chunks, and fits a phone."""

from __future__ import annotations

import time

import pytest

from ingest.models import Chunk
from ingest.services import document_delete, kb_get_or_create
from ingest.store import get_store
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PAGES = [
    "Chapter one. The pump must be primed before the first start, with two litres of water.",
    "Chapter two. To clean the filter, close the inlet valve, unscrew the cap and rinse the "
    "mesh under running water until no sand remains. " + "Dry it before refitting. " * 6,
]
GUIDE = b"""# Pump guide

Read this **first**: the pump needs water.

## Cleaning

To clean the filter, close the inlet valve and rinse the mesh under running water,
then refit the cap with a quarter turn.

| Part | Interval |
| --- | --- |
| Filter | weekly |
"""


def poll(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def sign_in(page, url: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_pdf_citation_shows_the_page_image_with_the_passage_highlighted(
    live_app, browser, ingest_text, viewport
):
    document = ingest_text(factories.public_kb("Pumps"), "pump.pdf", factories.text_pdf(PAGES))
    chunk = Chunk.objects.filter(document=document, page=2).first()
    page = browser.new_page(viewport=viewport)
    page.goto(f"{live_app.url}/documents/{document.pk}/?page=2&chunks={chunk.pk}#page-2")
    image = page.locator("#page-2 img.page-image")
    assert image.get_attribute("alt") == "Page 2 of pump.pdf"
    poll(lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), 30, "the image")
    assert image.evaluate("img => img.naturalWidth") >= 1000
    boxes = page.locator("#page-2 .highlight")
    assert boxes.count() >= 1
    picture, box = image.bounding_box(), boxes.first.bounding_box()
    assert picture and box and box["width"] > 0 and box["height"] > 0
    assert picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture["width"]
    assert picture["y"] <= box["y"] and box["y"] + box["height"] <= picture["y"] + picture["height"]
    assert page.locator("#page-1 .highlight").count() == 0
    assert "Cited passage highlighted" in page.locator("#page-2").text_content()
    page.locator("#page-2 summary").click()  # the text stays available below the image
    assert "inlet valve" in page.locator("#page-2 details .page-text").inner_text()
    assert no_sideways_scroll(page)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_markdown_and_word_documents_show_their_headings(live_app, browser, ingest_text, viewport):
    kb = factories.public_kb("Guides")
    markdown = ingest_text(kb, "guide.md", GUIDE)
    word = ingest_text(
        kb,
        "setup.docx",
        factories.docx(
            [("h1", "Setup"), ("p", "Install the agent."), ("h2", "Ports"), ("li", "Open 8443")]
        ),
    )
    page = browser.new_page(viewport=viewport)
    cited = Chunk.objects.filter(document=markdown, text__contains="inlet valve").first()
    page.goto(f"{live_app.url}/documents/{markdown.pk}/?chunks={cited.pk}")
    text = page.locator(".page-text")
    assert text.locator("h1").inner_text() == "Pump guide"
    assert text.locator("h2").inner_text() == "Cleaning"
    assert text.locator("strong").inner_text() == "first"
    assert text.locator("table th").count() == 2
    assert "inlet valve" in text.locator("mark").first.inner_text()
    shown = text.inner_text()
    assert "#" not in shown and "**" not in shown
    assert no_sideways_scroll(page)

    page.goto(f"{live_app.url}/documents/{word.pk}/")
    text = page.locator(".page-text")
    assert text.locator("h1").inner_text() == "Setup"
    assert text.locator("h2").inner_text() == "Ports"
    assert text.locator("li").inner_text() == "Open 8443"
    assert "#" not in text.inner_text()
    assert no_sideways_scroll(page)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_staff_inspect_chunks_with_token_counts_and_vector_state(
    live_app, browser, staff_user, ingest_text, viewport
):
    kb = kb_get_or_create(name="Inspect")
    document = ingest_text(kb, "long.pdf", factories.text_pdf(PAGES))
    page = browser.new_page(viewport=viewport)
    sign_in(page, live_app.url)
    page.goto(f"{live_app.url}/documents/{document.pk}/")
    assert page.locator(".back a").inner_text() == "← Inspect documents"
    page.click("text=Show chunks")
    rows = page.locator(".chunk-table tbody tr")
    assert rows.count() == document.chunk_count >= 2
    for index in range(rows.count()):
        row = rows.nth(index)
        assert int(row.locator(".tokens").inner_text().split()[-1]) > 0
        assert "indexed" in row.locator(".vector").inner_text()
    assert no_sideways_scroll(page)
    page.close()


def test_a_citation_to_a_deleted_document_explains_it_is_gone(live_app, browser, ingest_text):
    document = ingest_text(factories.public_kb("Old"), "old.md", "# Old\n\nOld advice.")
    pk, chunk = document.pk, document.chunks.first().pk
    document_delete(document=document, store=get_store())
    page = browser.new_page(viewport=PHONE)
    response = page.goto(f"{live_app.url}/documents/{pk}/?chunks={chunk}")
    assert response.status == 404
    assert "no longer in the knowledge base: it was deleted or replaced" in page.inner_text("main")
    page.click("text=Back to chat")
    page.wait_for_url(f"{live_app.url}/")
    assert no_sideways_scroll(page)
    page.close()

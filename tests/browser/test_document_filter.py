"""In Chromium: "ask only these documents" on the chat page, at a laptop's and a phone's size."""

from __future__ import annotations

import pytest

from tests.browser.test_answers import finished, open_chat, public_kb  # noqa: F401 - a fixture
from tests.browser.test_controls import SIZES, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sources_read(page) -> set[str]:
    """Every document the last answer shows as read, cited or behind "more passages"."""
    return set(
        page.eval_on_selector_all(
            ".message.assistant:last-of-type .source-name", "els => els.map(e => e.textContent)"
        )
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_questions_can_be_limited_to_chosen_documents(browser, live_app, public_kb, size):  # noqa: F811
    page = open_chat(browser, live_app, public_kb, size=size)
    page.fill("#question", "How do I reset the router?")
    page.keyboard.press("Enter")
    finished(page)
    assert len(sources_read(page)) > 1  # unfiltered: the answer read several documents

    page.click("#doc-filter summary")
    panel = page.locator(".doc-filter-panel")
    assert panel.is_visible()
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= size[0]  # all of it on screen
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
    assert page.locator("#doc-filter-list label").count() == 4
    page.fill("#doc-filter-q", "warr")
    assert page.locator("#doc-filter-list li:not([hidden])").all_inner_texts() == ["warranty.md"]
    page.check("#doc-filter-list li:not([hidden]) input")
    assert page.text_content("#doc-filter-label") == "1 of 4 chosen"
    assert not serious_violations(page)
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert page.locator("#doc-filter-chosen .doc-chip").inner_text() == "warranty.md ×"

    page.fill("#question", "How do I reset the router?")
    page.keyboard.press("Enter")
    finished(page)
    assert sources_read(page) == {"warranty.md"}
    assert "warranty" in page.locator(".message.assistant").last.inner_text().lower()

    page.click("#doc-filter-chosen .doc-chip")  # the chip removes the limit
    assert page.is_hidden("#doc-filter-chosen")
    assert page.text_content("#doc-filter-label") == "All documents"
    page.context.close()

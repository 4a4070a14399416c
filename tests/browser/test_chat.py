"""In headless Chromium: staff upload a document, then ask and watch a cited answer stream."""

from __future__ import annotations

import time

import pytest

from ingest.services import kb_get_or_create
from standin import Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUIDE = b"""# Router guide

## Factory reset

To factory reset the router, hold the recessed RESET pin for fifteen seconds until the
light blinks amber, then wait two minutes for it to restart.
"""


def test_upload_then_ask_and_follow_a_citation(live_app, browser, staff_user, tmp_path):
    kb = kb_get_or_create(name="Routers")
    page = browser.new_page()
    page.goto(f"{live_app.url}/admin/login/?next=/kb/{kb.slug}/documents/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/kb/{kb.slug}/documents/")

    guide = tmp_path / "router-guide.md"
    guide.write_bytes(GUIDE)
    page.set_input_files("#files", str(guide))
    page.wait_for_selector("tr[data-status=ready]", timeout=120_000)
    assert "router-guide.md" in page.inner_text("#doc-rows")

    live_app.llm.script(
        Reply(
            text="Hold the RESET pin for fifteen seconds [1]. " + "Then wait. " * 30,
            delay_per_token=0.03,
        )
    )
    page.goto(f"{live_app.url}/?kb={kb.slug}")
    page.fill("#question", "How do I factory reset the router?")
    page.keyboard.press("Enter")
    bubble = page.locator(".message.assistant .bubble").last
    lengths = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lengths.add(len(bubble.inner_text()))
        if page.locator(".message.assistant.streaming").count() == 0:
            break
        time.sleep(0.05)
    assert len([n for n in lengths if n > 0]) >= 3, lengths  # the answer grew while we watched
    assert "fifteen seconds" in bubble.inner_text()
    citation = bubble.locator("a.cite").first
    assert citation.inner_text() == "[1]"
    entry = page.locator(".message.assistant .cited-sources li").first
    assert entry.locator(".source-name").inner_text() == "router-guide.md"
    assert entry.locator(".source-numbers").inner_text() == "[1]"
    citation.click()  # a preview of the passage in place, with a link to its page
    assert "recessed RESET pin" in page.locator(".preview").inner_text()
    with page.context.expect_page() as opened:
        page.locator(".preview a").click()
    document = opened.value
    document.wait_for_load_state()
    assert "hold the recessed RESET pin" in document.inner_text(".page-text")
    assert "RESET pin" in document.locator(".page-text mark").first.inner_text()  # marked
    page.close()

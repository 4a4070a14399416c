"""In headless Chromium, in the admin: upload a question set, run it in the worker twice
with different settings, and compare the two runs side by side."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from ingest.services import kb_get_or_create
from tests.assistant.test_evalruns import CSV, LIGHTS, PRINTER, ROUTER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = [(1366, 768), (390, 844)]
NO_SIDEWAYS_SCROLL = (
    "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
)


@pytest.fixture
def helpdesk(live_app, ingest_text):
    kb = kb_get_or_create(name="Helpdesk")
    for name, text in (("router.md", ROUTER), ("printer.md", PRINTER), ("lights.md", LIGHTS)):
        ingest_text(kb, name, text)
    get_user_model().objects.create_superuser("boss", password="boss-pass-123")
    return kb


def run_set(page, mode_label: str, note: str) -> None:
    page.select_option("#id_mode", label=mode_label)
    page.fill("#id_note", note)
    page.click("input[value=Run]")
    # The report refreshes itself until the worker is done.
    page.locator("h2", has_text="Results").wait_for(timeout=120_000)


def test_upload_run_twice_and_compare(live_app, browser, helpdesk, tmp_path):
    # One test at both sizes: the web process caches content types, which a second test's
    # fresh database would renumber under the admin's change log.
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_app.url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "boss-pass-123")
    page.click("input[type=submit]")
    upload = tmp_path / "smoke.csv"
    upload.write_text(CSV)
    page.goto(f"{live_app.url}/admin/assistant/questionset/add/")
    page.select_option("#id_kb", label=helpdesk.name)
    page.fill("#id_name", "Smoke")
    page.set_input_files("#id_upload", str(upload))
    page.click("input[name=_continue]")
    assert "Run these 4 questions against Helpdesk now" in page.inner_text("#content")
    set_page = page.url

    run_set(page, "Hybrid", "as shipped")
    metrics = page.inner_text("table.metrics")
    assert "Recall@5\t1.0" in metrics and "No-match accuracy\t1.0" in metrics
    page.goto(set_page)
    run_set(page, "Words only", "words only")
    page.select_option("#compare-a", index=0)
    page.click("input[value=Compare]")

    assert "Settings that differ" in page.inner_text("#content")
    differ = page.locator(".module", has_text="Settings that differ").inner_text()
    assert "mode\thybrid\tlexical" in differ
    rows = page.locator("table.metrics.compare tbody tr").all_inner_texts()
    assert rows[0].startswith("Recall@1\t1.0")
    compare_page = page.url
    report_page = page.locator("table.metrics.compare thead a").first.get_attribute("href")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for url in (compare_page, live_app.url + report_page):
            page.goto(url)
            assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{url} scrolls sideways at {width}px"

    page.goto(f"{live_app.url}/admin/assistant/evaluationrun/")
    for box in page.locator("input.action-select").all():
        box.check()
    page.select_option("select[name=action]", "compare")
    page.click("button[name=index]")
    assert "/admin/assistant/evaluationrun/compare/?a=" in page.url
    page.close()

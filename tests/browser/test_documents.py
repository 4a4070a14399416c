"""In headless Chromium: staff manage documents; an ordinary user cannot."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from ingest.models import Document
from ingest.services import kb_get_or_create
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def poll(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_staff_upload_three_files_watch_them_and_delete_one(
    live_app, browser, staff_user, tmp_path
):
    kb = kb_get_or_create(name="Support")
    files = {
        "setup.md": b"# Setup\n\nPlug the hub into port A before powering on.",
        "errors.pdf": factories.text_pdf(
            ["Error 12 means the fan is blocked.", "Error 13 means overheating."]
        ),
        "dialog.png": factories.text_image(["Update failed: not enough storage"]),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live_app.url, "staff", "staff-pass-123")
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.set_input_files("#files", paths)  # three at once
    # Polled from Python: the page's CSP (rightly) forbids the eval that wait_for_function uses.
    poll(lambda: page.locator("#doc-rows tr[data-status=ready]").count() == 3, timeout=180)
    table = page.inner_text("#doc-rows")
    assert all(name in table for name in files)
    assert "errors.pdf" in table and "2" in page.inner_text("tr:has-text('errors.pdf')")  # pages
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("tr:has-text('setup.md') button:has-text('Delete')")
    poll(lambda: "setup.md" not in page.inner_text("#doc-rows"), timeout=30)
    assert sorted(Document.objects.values_list("filename", flat=True)) == [
        "dialog.png",
        "errors.pdf",
    ]
    context.close()


def test_ordinary_user_reaches_neither_the_upload_page_nor_write_endpoints(live_app, browser):
    kb = kb_get_or_create(name="Support")
    get_user_model().objects.create_user("visitor", password="visitor-pass-123")
    document = Document.objects.create(kb=kb, filename="x.md", sha256="0" * 64, status="ready")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live_app.url, "visitor", "visitor-pass-123")
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    assert "/admin/login/" in page.url  # bounced to a staff login
    assert page.locator("#files").count() == 0
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": csrf, "Referer": live_app.url + "/"}
    upload = page.request.post(
        f"{live_app.url}/api/kbs/{kb.slug}/documents",
        multipart={"files": {"name": "a.md", "mimeType": "text/markdown", "buffer": b"# A"}},
        headers=headers,
    )
    assert upload.status in (403, 404)
    assert page.request.delete(
        f"{live_app.url}/api/documents/{document.pk}", headers=headers
    ).status in (403, 404)
    assert (
        page.request.post(f"{live_app.url}/api/kbs", data={"name": "Mine"}, headers=headers).status
        == 403
    )
    assert Document.objects.count() == 1
    context.close()


def test_the_documents_page_fits_a_phone(live_app, browser, staff_user, ingest_text):
    """Before: at 390 px the table scrolled sideways and cut off each row's buttons."""
    kb = kb_get_or_create(name="Support")
    ingest_text(kb, "a-rather-long-file-name-for-the-router-setup-guide.md", "# Setup\n\nPort A.")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, live_app.url, "staff", "staff-pass-123")
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    poll(lambda: page.locator("#doc-rows tr[data-status=ready]").count() == 1, timeout=60)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    for button in page.locator("#doc-rows button").all():
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    status = page.locator("#doc-rows td[data-label=Status]")  # labelled, as the header is hidden
    assert status.inner_text() == "ready"
    assert status.evaluate("td => getComputedStyle(td, '::before').content") != "none"
    context.close()

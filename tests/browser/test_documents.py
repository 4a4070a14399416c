"""In headless Chromium, at 1366x768 and 390x844: staff manage documents; members read them."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from ingest.models import Document
from ingest.services import kb_get_or_create
from tests import factories
from tests.browser.test_controls import SIZES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
sizes = pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])


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


def open_page(browser, live_app, size, username="staff", password="staff-pass-123"):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    sign_in(page, live_app.url, username, password)
    return context, page


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def within_viewport(page, selector: str, width: int) -> None:
    for node in page.locator(selector).all():
        box = node.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


def first_name(page) -> str:
    return page.locator("#doc-rows td.name a").first.inner_text()


def many(kb, count: int, **fields) -> list[Document]:
    """`count` ready documents, manual-000.md first (so the newest is the last)."""
    return Document.objects.bulk_create(
        Document(
            kb=kb,
            filename=f"manual-{i:03d}.md",
            sha256=f"{i:064x}",
            kind="markdown",
            size_bytes=1500 * (i + 1),
            status="ready",
            stage="ready",
            **fields,
        )
        for i in range(count)
    )


@sizes
def test_staff_upload_three_files_watch_them_and_delete_one(
    live_app, browser, staff_user, tmp_path, size
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
    context, page = open_page(browser, live_app, size)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.set_input_files("#files", paths)  # three at once
    # Polled from Python: the page's CSP (rightly) forbids the eval that wait_for_function uses.
    poll(lambda: page.locator("#doc-rows tr[data-status=ready]").count() == 3, timeout=180)
    table = page.inner_text("#doc-rows")
    assert all(name in table for name in files)
    pdf_row = page.locator("tr:has-text('errors.pdf')")
    assert pdf_row.locator("td[data-label=Type]").inner_text() == "PDF"
    assert pdf_row.locator("td[data-label=Pages]").inner_text() == "2"
    assert "staff" in pdf_row.locator("td[data-label='Uploaded by']").inner_text()
    assert no_sideways_scroll(page)
    within_viewport(page, "#doc-rows button", size[0])
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("tr:has-text('setup.md') button:has-text('Delete')")
    poll(lambda: "setup.md" not in page.inner_text("#doc-rows"), timeout=30)
    assert dialogs == ["Delete setup.md?"]
    assert sorted(Document.objects.values_list("filename", flat=True)) == [
        "dialog.png",
        "errors.pdf",
    ]
    context.close()


@sizes
def test_the_tray_refuses_rejects_and_names_duplicates(
    live_app, browser, staff_user, tmp_path, size
):
    kb = kb_get_or_create(name="Support")
    same = b"# Router\n\nThe same bytes as the guide."
    existing = Document.objects.create(  # a stored file: only those make a duplicate
        kb=kb,
        filename="router guide.md",
        sha256=hashlib.sha256(same).hexdigest(),
        status="ready",
        file=ContentFile(same, name="router guide.md"),
    )
    inputs = {
        "copy.md": same,
        "tool.pdf": b"\x7fELF\x02\x01\x01" + bytes(500),  # a program dressed as a PDF
        "setup.exe": b"MZ" + bytes(100),
        "notes.md": b"# Notes\n\n" + b"long line of notes. " * 400,  # ~8 KB
    }
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
    context, page = open_page(browser, live_app, size)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.wait_for_selector("#doc-rows tr[data-id]")
    # A 4 KB limit for this page only, so a small file is "too big" without sending 100 MB.
    page.evaluate("() => { document.getElementById('documents').dataset.maxBytes = '4096'; }")
    page.set_input_files("#files", [str(tmp_path / n) for n in ("notes.md", "setup.exe")])
    tray = page.locator("#uploads")
    assert "This file is 7.8 KB; the limit is 4 KB." in tray.inner_text()
    assert "Docent can't read .exe files." in tray.inner_text()
    page.evaluate("() => { document.getElementById('documents').dataset.maxBytes = '1048576'; }")
    page.set_input_files("#files", [str(tmp_path / n) for n in ("tool.pdf", "copy.md")])
    duplicate = page.locator("#uploads li[data-result=duplicate]")
    duplicate.wait_for()
    assert duplicate.inner_text().startswith("copy.md")
    assert "Already here as router guide.md" in duplicate.inner_text()
    link = duplicate.locator("a")
    assert link.inner_text() == "router guide.md"
    assert link.get_attribute("href") == f"/documents/{existing.pk}/"
    rejected = page.locator("#uploads li[data-result=rejected]:has-text('tool.pdf')")
    rejected.wait_for()
    assert "Rejected: Unsupported file type" in rejected.inner_text()
    assert set(Document.objects.values_list("filename", flat=True)) == {
        "router guide.md",
        "tool.pdf",
    }  # the refused files were never sent
    assert no_sideways_scroll(page)
    within_viewport(page, "#uploads button", size[0])
    time.sleep(6.5)  # problems stay until dismissed
    assert page.locator("#uploads li[data-result=rejected]").count() == 3
    rejected.locator("button:has-text('Dismiss')").click()
    assert page.locator("#uploads li[data-result=rejected]").count() == 2
    context.close()


@sizes
def test_an_upload_shows_its_percentage_and_cancel_stops_it(
    live_app, browser, staff_user, tmp_path, size
):
    kb = kb_get_or_create(name="Support")
    (tmp_path / "slow.md").write_bytes(b"# Slow\n\n" + b"words to send. " * 20_000)
    context, page = open_page(browser, live_app, size)
    held = []  # the upload reaches this stand-in for a slow server, which never answers

    def hold(route):
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(f"**/api/kbs/{kb.slug}/documents*", hold)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.set_input_files("#files", str(tmp_path / "slow.md"))
    entry = page.locator("#uploads li").first
    for _ in range(50):  # Playwright hands over the route only while it is called
        if held:
            break
        page.wait_for_timeout(200)
    assert held
    assert entry.locator(".percent").inner_text().endswith("%")
    assert entry.locator("progress").count() == 1
    assert no_sideways_scroll(page)
    within_viewport(page, "#uploads button", size[0])
    entry.locator("button:has-text('Cancel')").click()
    poll(lambda: entry.get_attribute("data-result") == "cancelled", timeout=10)
    assert entry.inner_text().startswith("slow.md")
    assert "Cancelled" in entry.inner_text()
    assert not Document.objects.exists()
    page.unroute(f"**/api/kbs/{kb.slug}/documents*")
    context.close()


@sizes
def test_progress_of_queued_and_processing_documents(live_app, browser, staff_user, size):
    kb = kb_get_or_create(name="Support")
    # As a worker elsewhere would leave it mid-extraction (its lease live, so no recovery).
    reading = Document.objects.create(
        kb=kb,
        filename="big manual.pdf",
        sha256="1" * 64,
        kind="pdf",
        status="processing",
        stage="extracting",
        progress=42,
        lease_owner="elsewhere:1:1",
        lease_expires_at=timezone.now() + timedelta(hours=1),
    )
    Document.objects.create(kb=kb, filename="waiting.md", sha256="2" * 64, status="queued")
    context, page = open_page(browser, live_app, size)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    row = page.locator("#doc-rows tr[data-status=processing]")
    row.wait_for()
    assert "42%" in row.locator("td[data-label=Status]").inner_text()
    assert row.locator("progress").evaluate("bar => bar.value") == 42
    assert row.locator("button:has-text('Cancel')").count() == 1
    assert row.locator("button:has-text('Retry')").count() == 0
    queued = page.locator("#doc-rows tr[data-status=queued]")
    assert queued.locator("button:has-text('Cancel')").count() == 1
    Document.objects.filter(pk=reading.pk).update(progress=77)
    poll(lambda: "77%" in row.inner_text(), timeout=10)  # busy pages refresh every second
    assert no_sideways_scroll(page)
    context.close()


@sizes
def test_pages_sort_and_the_url_keeps_the_view(live_app, browser, staff_user, size):
    kb = kb_get_or_create(name="Support")
    many(kb, 120)
    context, page = open_page(browser, live_app, size)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.wait_for_selector("#doc-rows tr[data-id]")
    assert page.locator("#doc-rows tr[data-id]").count() == 50
    assert first_name(page) == "manual-119.md"
    assert "1–50 of 120" in page.inner_text("#page-info")
    page.click("#page-next")
    poll(lambda: "51–100 of 120" in page.inner_text("#page-info"), timeout=10)
    assert "page=2" in page.url
    assert first_name(page) == "manual-069.md"
    page.select_option("#sort", "name")
    poll(lambda: "sort=name" in page.url, timeout=10)
    poll(lambda: first_name(page) == "manual-000.md", timeout=10)
    page.reload()
    poll(lambda: first_name(page) == "manual-000.md", timeout=10)
    assert page.input_value("#sort") == "name"
    page.go_back()  # back to page 2, newest first
    poll(lambda: first_name(page) == "manual-069.md", timeout=10)
    page.fill("#search", "manual-11")
    poll(lambda: "of 10 " in page.inner_text("#page-info"), timeout=10)
    assert "q=manual-11" in page.url
    assert no_sideways_scroll(page)
    context.close()


@sizes
def test_bulk_delete_names_the_count(live_app, browser, staff_user, size):
    kb = kb_get_or_create(name="Support")
    many(kb, 60)
    context, page = open_page(browser, live_app, size)
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    page.wait_for_selector("#doc-rows tr[data-id]")
    assert page.is_disabled("#bulk-delete")
    page.check("#select-page")
    assert page.inner_text("#bulk-count") == "50 selected"
    page.uncheck("#doc-rows tr:has-text('manual-059.md') td.select input")
    assert page.inner_text("#bulk-count") == "49 selected"
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("#bulk-delete")
    poll(lambda: "Deleted: 49 documents." in page.inner_text("#doc-message"), timeout=30)
    assert dialogs == ["Delete 49 documents? This can't be undone."]
    poll(lambda: "of 11 " in page.inner_text("#page-info"), timeout=10)
    assert Document.objects.count() == 11
    assert Document.objects.filter(filename="manual-059.md").exists()
    assert no_sideways_scroll(page)
    within_viewport(page, "#bulk-bar button", size[0])
    context.close()


@sizes
def test_a_member_reads_the_documents_page_without_controls(live_app, browser, size):
    kb = kb_get_or_create(name="Support")
    member = get_user_model().objects.create_user("member", password="member-pass-123")
    kb.members.add(member)
    many(kb, 3)
    context, page = open_page(browser, live_app, size, "member", "member-pass-123")
    page.goto(f"{live_app.url}/?kb={kb.slug}")
    assert page.get_attribute("#browse-documents", "href") == f"/kb/{kb.slug}/documents/"
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    assert page.url.endswith(f"/kb/{kb.slug}/documents/")  # no bounce to a staff login
    page.wait_for_selector("#doc-rows tr[data-id]")
    assert page.locator("#doc-rows tr[data-id]").count() == 3
    assert page.locator("#files, #dropzone, #bulk-bar, #doc-rows button").count() == 0
    assert page.locator("#doc-rows input[type=checkbox]").count() == 0
    assert "only staff can add or remove them" in page.inner_text(".read-only-note")
    page.fill("#search", "manual-001")
    poll(lambda: page.locator("#doc-rows tr[data-id]").count() == 1, timeout=10)
    assert no_sideways_scroll(page)
    context.close()


def test_others_get_a_404_or_the_login_and_no_write_endpoint(live_app, browser):
    kb = kb_get_or_create(name="Support")
    get_user_model().objects.create_user("visitor", password="visitor-pass-123")
    document = Document.objects.create(kb=kb, filename="x.md", sha256="0" * 64, status="ready")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    assert "/accounts/login/?next=" in page.url  # Docent's own sign-in, not the admin's
    sign_in(page, live_app.url, "visitor", "visitor-pass-123")
    response = page.goto(f"{live_app.url}/kb/{kb.slug}/documents/")
    assert response.status == 404
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
    bulk = page.request.post(
        f"{live_app.url}/api/kbs/{kb.slug}/documents/bulk",
        data={"action": "delete", "ids": [document.pk]},
        headers=headers,
    )
    assert bulk.status == 404
    assert Document.objects.count() == 1
    context.close()

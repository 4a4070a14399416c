"""In headless Chromium: the chat page's history (the sidebar's Recent list): dates, inline
rename, search, delete, and the list updating itself while a question is answered."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from assistant.models import Conversation, Message
from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from standin import Reply
from tests.browser.test_controls import serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = [(1366, 768), (390, 844)]
CHAT_JS = Path(__file__).resolve().parents[2] / "static" / "docent" / "chat.js"

# The list's structure, whitespace aside: what the server renders and what history.js draws
# must be the same.
SHAPE = """node => {
  const walk = n => n.nodeType === 3 ? (n.textContent.trim() ? n.textContent.trim() : null)
    : [n.nodeName.toLowerCase(), ...[...n.attributes].map(a => `${a.name}=${a.value}`).sort(),
       ...[...n.childNodes].map(walk).filter(x => x !== null)];
  return walk(node);
}"""


@pytest.fixture
def routers(live_app, staff_user, ingest_text):
    kb = kb_get_or_create(name="Routers")
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.PUBLIC)
    ingest_text(kb, "guide.md", "# Reset\n\nHold the reset pin for fifteen seconds.")
    old = Conversation.objects.create(kb=kb, user=staff_user, title="Printer jam")
    Message.objects.create(conversation=old, role="user", content="The paper tray is stuck")
    month_ago = old.updated_at - timedelta(days=30)
    Conversation.objects.filter(pk=old.pk).update(updated_at=month_ago)
    return kb


def sign_in(page, live_app, kb, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{live_app.url}/accounts/login/?next=/%3Fkb%3D{kb.slug}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/?kb={kb.slug}")


def open_sidebar(page) -> None:
    """On a phone the history is in a drawer behind the Conversations button."""
    if page.locator("#menu-toggle").is_visible() and not page.locator("#history-q").is_visible():
        page.click("#menu-toggle")
    page.locator("#history-q").wait_for()


def ask(page, question: str) -> None:
    page.fill("#question", question)
    answers = page.locator(".message.assistant").count()
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll('.message.assistant').length > {answers}"
        " && !document.querySelector('.message.assistant.streaming')",
        timeout=120_000,  # the first question loads the embedder in the web process
    )
    assert page.locator(".message.assistant .error:visible").count() == 0, page.inner_text(
        "#messages"
    )


def titles(page) -> list[str]:
    return page.locator("#history-list .history-title").all_inner_texts()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_rename_search_and_delete_in_the_history(live_app, browser, routers, size):
    live_app.llm.script(Reply(text="Hold the reset pin for fifteen seconds."))
    page = browser.new_page()
    sign_in(page, live_app, routers, size)
    ask(page, "How do I reset the router?")
    page.reload()  # the server-rendered list (the live update has its own test below)
    open_sidebar(page)
    assert titles(page) == ["How do I reset the router?", "Printer jam"]
    assert page.locator("#history-list .history-period").all_inner_texts() == ["Today", "Older"]
    current = page.locator("#history-list [aria-current=page] .history-title")
    assert current.inner_text() == "How do I reset the router?"
    assert page.locator("#history-list time").first.get_attribute("datetime")
    assert serious_violations(page) == []

    # The list history.js draws looks exactly like the one the server rendered.
    rendered = page.locator("#history-list").evaluate(SHAPE)
    page.evaluate("window.__served = document.querySelector('#history-list .history-group')")
    page.fill("#history-q", "x")
    page.fill("#history-q", "")  # one request after the debounce: the whole list again
    page.wait_for_function("() => !window.__served.isConnected")  # drawn anew by the script
    assert page.locator("#history-list").evaluate(SHAPE) == rendered

    # Rename inline: Escape cancels, Enter saves.
    page.get_by_role("button", name="Rename How do I reset the router?").click()
    box = page.locator("#history-list input.history-rename")
    assert box.evaluate("n => n === document.activeElement")
    box.fill("Never mind")
    box.press("Escape")
    assert titles(page)[0] == "How do I reset the router?"
    page.get_by_role("button", name="Rename How do I reset the router?").click()
    box.fill("  Router reset notes ")
    box.press("Enter")
    page.get_by_role("button", name="Rename Router reset notes").wait_for()
    assert titles(page)[0] == "Router reset notes"
    assert Conversation.objects.filter(title="Router reset notes").count() == 1
    assert page.evaluate("document.activeElement.dataset.action") == "rename"  # focus stays

    # Search: by title, by message text, and nothing.
    page.fill("#history-q", "reset notes")
    page.wait_for_function(
        "() => document.querySelectorAll('#history-list .history-item').length === 1"
    )
    assert titles(page) == ["Router reset notes"]
    page.fill("#history-q", "tray")  # only in a message of the older conversation
    page.wait_for_function(
        "() => [...document.querySelectorAll('#history-list .history-title')].map(n => n.textContent).join() === 'Printer jam'"
    )
    page.fill("#history-q", "zebra")
    page.locator("#history-list").get_by_text("No conversations match").wait_for()
    page.fill("#history-q", "")
    page.wait_for_function(
        "() => document.querySelectorAll('#history-list .history-item').length === 2"
    )

    # Keyboard: from the search box, Tab reaches the first conversation and its buttons,
    # each with a visible focus ring.
    page.focus("#history-q")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('history-link')")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Rename Router reset notes"
    )
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    assert (
        page.locator("#history-list .history-item")
        .first.locator(".history-actions")
        .evaluate("n => getComputedStyle(n).opacity")
        == "1"
    )

    # Everything fits: nothing scrolls sideways and every button is on screen.
    width = page.viewport_size["width"]
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    for button in page.locator("#history-list button").all():
        box_ = button.bounding_box()
        assert box_ and box_["x"] >= 0 and box_["x"] + box_["width"] <= width, box_

    # Delete another conversation: asked first, then gone, and the page stays.
    url = page.url
    page.get_by_role("button", name="Delete Printer jam").click()
    confirm = page.get_by_role("group", name="Delete Printer jam?")
    assert confirm.get_by_role("button", name="Cancel").evaluate(
        "n => n === document.activeElement"
    )
    confirm.get_by_role("button", name="Cancel").click()
    assert titles(page) == ["Router reset notes", "Printer jam"]
    page.get_by_role("button", name="Delete Printer jam").click()
    confirm.get_by_role("button", name="Delete").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#history-list .history-item').length === 1"
    )
    assert page.url == url and page.locator("#history-q").is_visible()  # the drawer stays open
    assert not Conversation.objects.filter(title="Printer jam").exists()

    # Deleting the open conversation starts a new one.
    page.get_by_role("button", name="Delete Router reset notes").click()
    page.get_by_role("group", name="Delete Router reset notes?").get_by_role(
        "button", name="Delete"
    ).click()
    page.wait_for_url(f"{live_app.url}/?kb={routers.slug}")
    open_sidebar(page)
    assert page.locator("#history-list").inner_text().strip() == "No conversations yet."
    assert not Conversation.objects.exists()
    page.close()


@pytest.mark.skipif(
    "docent:conversation" not in CHAT_JS.read_text(),
    reason="needs static/docent/chat.js to dispatch the docent:conversation event",
)
@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_recent_updates_live(live_app, browser, routers, size):
    """A new conversation appears at the top, marked current, without a reload; one that
    gets a new question moves to the top."""
    live_app.llm.script(
        Reply(text="Hold the reset pin."), Reply(text="Open the tray."), Reply(text="Again.")
    )
    page = browser.new_page()
    sign_in(page, live_app, routers, size)
    ask(page, "How do I reset the router?")
    open_sidebar(page)
    page.wait_for_function(
        "() => document.querySelectorAll('#history-list .history-item').length === 2"
    )
    assert titles(page) == ["How do I reset the router?", "Printer jam"]
    current = page.locator("#history-list [aria-current=page] .history-title")
    assert current.inner_text() == "How do I reset the router?"
    assert page.locator("#history-list .history-period").first.inner_text() == "Today"

    page.locator(".history-link", has_text="Printer jam").click()  # an older conversation...
    page.wait_for_url("**&c=*")
    ask(page, "And the tray?")  # ...gets a new question: it moves to the top
    open_sidebar(page)
    page.wait_for_function(
        "() => document.querySelector('#history-list .history-title').textContent === 'Printer jam'"
    )
    assert titles(page) == ["Printer jam", "How do I reset the router?"]
    assert current.inner_text() == "Printer jam"
    assert page.locator("#history-list .history-period").all_inner_texts() == ["Today"]
    page.close()

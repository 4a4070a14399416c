"""Controls people can see and reach: icons drawn by the app, names, the keyboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.models import Widget
from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from standin import Reply
from tests.browser.test_widget import open_widget, page_html

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
SIZES = [(1366, 768), (390, 844)]


@pytest.fixture
def public_kb(ingest_text, live_app):
    kb = kb_get_or_create(name="Printers")
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.PUBLIC)
    ingest_text(kb, "manual.md", "# Errors\n\nE-42 means the paper tray is jammed.")
    return kb


def opens_file_picker(page, picker: str) -> bool:
    """Whether Enter on the focused control clicks the file input (the browser's own
    dialog is then held back, so that no test waits on a native window)."""
    page.evaluate(
        f"(() => {{ const input = {picker}; window.__picked = false;"
        " input.addEventListener('click', e => { window.__picked = input.multiple; e.preventDefault(); },"
        " {once: true}); })()"
    )
    page.keyboard.press("Enter")
    return page.evaluate("window.__picked")


def control_names(page) -> list[tuple[str, str]]:
    """(visible text, accessible name) of every button and form control on the page."""
    return page.locator("button:visible, textarea:visible").evaluate_all(
        """nodes => nodes.map(n => [n.innerText || "",
            n.getAttribute("aria-label") || (n.labels && n.labels[0] ? n.labels[0].innerText : "")
            || n.innerText || n.title || ""])"""
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_chat_controls_are_named_drawn_as_svg_and_reachable_by_keyboard(
    live_app, browser, public_kb, size
):
    """Before: 📎 👍 👎 were emoji with no text (empty boxes without an emoji font), the
    attach control could not be reached by keyboard and the question box had no label."""
    live_app.llm.script(Reply(text="E-42 means the tray is jammed [1]."))
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{live_app.url}/?kb={public_kb.slug}")
    page.fill("#question", "What does E-42 mean?")
    page.keyboard.press("Enter")
    page.locator(".feedback-bar button").first.wait_for()
    controls = control_names(page)
    assert all(name.strip() for _, name in controls), controls
    assert not [text for text, _ in controls if EMOJI.search(text)], controls
    assert not EMOJI.search(page.locator("body").inner_text())
    assert page.locator("#question").evaluate("n => n.labels[0].innerText") == "Your question"
    icons = page.locator(".feedback-bar svg use, #attach svg use")
    assert icons.count() == 3
    assert page.locator(".chat-layout").bounding_box()["y"] < 60  # the icon set takes no room
    # Keyboard only: from the question box, Shift+Tab... Tab reaches Attach, Enter opens it.
    page.locator("#question").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "attach"
    assert opens_file_picker(page, "document.getElementById('file-input')")
    page.close()


def test_a_failed_answer_offers_nothing_to_rate(live_app, browser, public_kb):
    live_app.llm.script(Reply(status=400, error_message="bad request"))
    page = browser.new_page()
    page.goto(f"{live_app.url}/?kb={public_kb.slug}")
    page.fill("#question", "What does E-42 mean?")
    page.keyboard.press("Enter")
    page.locator(".message.assistant .error").wait_for()
    page.wait_for_function("!document.querySelector('.message.assistant.streaming')")
    assert page.locator(".feedback-bar").count() == 0
    page.reload()
    assert page.locator(".message.assistant .error").count() == 1
    assert page.locator(".feedback-bar").count() == 0
    page.close()


def test_the_widget_attach_control_is_an_icon_button_the_keyboard_reaches(
    live_app,
    browser,
    host_site,
    public_kb,
):
    site = host_site("127.0.0.2", "")
    widget = Widget.objects.create(name="Shop", kb=public_kb, allowed_origins=site)
    site = host_site("127.0.0.2", page_html(live_app.url, widget))
    Widget.objects.filter(pk=widget.pk).update(allowed_origins=site)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(site)
    open_widget(page)
    attach = page.locator("button.attach")
    attach.wait_for(state="visible")  # shown once the session says screenshots are accepted
    assert attach.get_attribute("aria-label") == "Attach a screenshot"
    assert attach.locator("svg path").count() == 1 and not EMOJI.search(attach.inner_text())
    attach.focus()
    picker = "document.querySelector('[data-docent-widget]').shadowRoot.querySelector('input[type=file]')"
    assert opens_file_picker(page, picker)
    page.close()


AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def serious_violations(page) -> list:
    """What axe-core (run inside the page) finds that is serious or critical."""
    page.evaluate(AXE.read_text())  # evaluated, not a <script>: the page's CSP stays as is
    found = page.evaluate(
        "axe.run().then(r => r.violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' '))]))"
    )
    return [v for v in found if v[1] in ("serious", "critical")]


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_the_chat_page_has_no_serious_accessibility_violations(live_app, browser, public_kb, size):
    live_app.llm.script(Reply(text="E-42 means the tray is jammed [1]."))
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{live_app.url}/?kb={public_kb.slug}")
    assert serious_violations(page) == []
    page.fill("#question", "What does E-42 mean?")
    page.keyboard.press("Enter")
    page.locator(".feedback-bar button").first.wait_for()
    assert serious_violations(page) == []
    page.close()


def test_on_a_phone_the_knowledge_bases_and_history_are_one_tap_away(live_app, browser, public_kb):
    """Before: under 720 px the sidebar was hidden, with no way to switch knowledge base,
    start a new conversation or reach the history."""
    kb_get_or_create(name="Second")
    KnowledgeBase.objects.filter(name="Second").update(visibility=KnowledgeBase.Visibility.PUBLIC)
    live_app.llm.script(Reply(text="E-42 means the tray is jammed [1]."))
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{live_app.url}/?kb={public_kb.slug}")
    page.fill("#question", "What does E-42 mean?")
    page.keyboard.press("Enter")
    page.locator(".feedback-bar button").first.wait_for()
    assert not page.locator("#kb-select").is_visible()
    menu = page.locator("#menu-toggle")
    assert menu.is_visible() and menu.get_attribute("aria-expanded") == "false"
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert page.locator("#kb-select").is_visible() and page.locator("#new-chat").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#kb-select").is_visible()
    menu.click()
    page.click("#drawer-close")  # touch users close it with a button...
    assert not page.locator("#kb-select").is_visible()
    menu.click()
    page.mouse.click(370, 600)  # ...or by tapping beside it
    assert not page.locator("#kb-select").is_visible()
    page.reload()  # the conversation is now in the history, one tap away
    page.locator("#menu-toggle").click()
    assert "What does E-42 mean?" in page.locator(".recent").inner_text()
    page.select_option("#kb-select", label="Second")
    page.wait_for_url("**/?kb=second")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    page.close()


def test_the_drawer_button_is_not_shown_on_a_laptop(live_app, browser, public_kb):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_app.url}/?kb={public_kb.slug}")
    assert page.locator("#kb-select").is_visible() and not page.locator("#menu-toggle").is_visible()
    page.close()

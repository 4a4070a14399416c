"""In Chromium: answers people can check and work with, at a laptop's and a phone's size.

Sources deduplicated and in citation order with a disclosure for the rest, [n] previews,
copy, regenerate, edit and resend, errors with Retry, stop, screenshots alone and as
thumbnails, the welcome, the mode line, dark mode and the keyboard shortcuts.
"""

from __future__ import annotations

import pytest

from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from standin import Reply
from tests import factories
from tests.browser.test_controls import SIZES, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUIDE = "\n\n".join(
    f"## Step {n}\n\n" + f"Step {n} of the reset: hold the RESET pin and count to {n * 5}. " * 12
    for n in range(1, 9)
)
FAQ = "# FAQ\n\n## Amber light\n\nThe amber light means the router is updating its firmware."


@pytest.fixture
def public_kb(ingest_text, live_app):
    kb = kb_get_or_create(name="Routers")
    KnowledgeBase.objects.filter(pk=kb.pk).update(
        visibility=KnowledgeBase.Visibility.PUBLIC,
        starter_questions="What does the amber light mean?\nHow do I reset the router?",
    )
    ingest_text(kb, "guide.md", GUIDE)
    ingest_text(kb, "faq.md", FAQ)
    ingest_text(
        kb, "warranty.md", "# Warranty\n\nA reset does not void the warranty of the router."
    )
    ingest_text(kb, "lights.md", "# Lights\n\nA green light means the router is online.")
    return kb


def open_chat(browser, live_app, kb, size=(1366, 768), **context):
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}, **context).new_page()
    page.goto(f"{live_app.url}/?kb={kb.slug}")
    return page


def ask(page, question: str) -> None:
    page.fill("#question", question)
    page.keyboard.press("Enter")
    finished(page)


def finished(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('.message.assistant')"
        " && !document.querySelector('.message.assistant.streaming')"
    )


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_sources_are_one_per_document_cited_first_and_the_rest_behind_a_disclosure(
    live_app, browser, public_kb, size
):
    """Before: every packed chunk was listed, the same file many times, cited or not."""
    page = open_chat(browser, live_app, public_kb, size)
    # The answer cites the FAQ's passage first; which number it has depends on ranking.
    page.fill("#question", "What does the amber light mean, and how do I reset?")
    numbers = {}

    def route(answer_with):
        live_app.llm.script(Reply(text=answer_with))

    # Find the passages first (retrieval-only numbering is the same as the model's).
    route("Looking [1].")
    page.keyboard.press("Enter")
    finished(page)
    passages = page.evaluate(
        "JSON.parse(document.querySelector('.message.assistant').dataset.passages)"
    )
    for p in passages:
        numbers.setdefault(p["document"], []).append(p["number"])
    assert len(numbers["guide.md"]) >= 2  # several passages of one file were read
    faq, guide = numbers["faq.md"][0], numbers["guide.md"]
    route(f"It is updating its firmware [{faq}]. Hold RESET [{guide[1]}][{guide[0]}] [{faq}].")
    page.locator(".message.assistant .regenerate").last.click()
    finished(page)
    answer = page.locator(".message.assistant").last
    entries = answer.locator(".cited-sources > li")
    assert entries.count() == 2  # two documents, however many passages
    assert entries.nth(0).locator(".source-name").inner_text() == "faq.md"
    assert entries.nth(0).locator(".source-numbers").inner_text() == f"[{faq}]"
    assert entries.nth(1).locator(".source-numbers").inner_text() == f"[{guide[1]}][{guide[0]}]"
    assert "firmware" in entries.nth(0).locator(".excerpt").inner_text()
    more = answer.locator("details.more-sources")
    read = len(passages) - 3
    assert more.locator("summary").inner_text() == f"{read} more passage{'s' * (read != 1)} read"
    assert not more.locator("ul").is_visible()
    # [n] opens a preview in place; its link opens the page in a new tab.
    answer.locator(f"a.cite[data-source='{faq}']").first.click()
    preview = page.locator(".preview")
    assert "firmware" in preview.inner_text() and preview.is_visible()
    box = preview.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= size[0]
    assert preview.locator("a").get_attribute("target") == "_blank"
    page.keyboard.press("Escape")
    assert page.locator(".preview").count() == 0
    assert no_sideways_scroll(page)
    page.reload()  # the saved answer shows the same grouping
    assert page.locator(".message.assistant").last.locator(".cited-sources > li").count() == 2
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_copy_regenerate_and_edit_and_resend(live_app, browser, public_kb, size):
    page = open_chat(
        browser, live_app, public_kb, permissions=["clipboard-read", "clipboard-write"]
    )
    live_app.llm.script(Reply(text="Hold **RESET** [1].\n\n```\nreset --hard\n```"))
    ask(page, "How do I reset the router?")
    answer = page.locator(".message.assistant").last
    answer.get_by_role("button", name="Copy", exact=True).click()
    assert "Hold RESET" in page.evaluate("navigator.clipboard.readText()")
    answer.get_by_role("button", name="Copy code").click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == "reset --hard"

    live_app.llm.script(Reply(text="Second answer [1]."))
    answer.get_by_role("button", name="Regenerate").click()
    finished(page)
    assert page.locator(".message.assistant").count() == 1
    assert "Second answer" in page.locator(".message.assistant .answer").inner_text()

    live_app.llm.script(Reply(text="About the amber light [1]."))
    page.locator(".message.user").get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Edit your question")
    editor.fill("What does the amber light mean?")
    editor.press("Enter")
    finished(page)
    assert page.locator(".message.user").count() == 1
    assert page.locator(".message.user .bubble").inner_text() == "What does the amber light mean?"
    page.reload()  # the server kept the same: one question, its new answer
    assert page.locator(".message.user").count() == 1
    assert "amber light" in page.locator(".message.assistant .answer").inner_text()
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_an_error_shows_as_an_error_with_retry_and_no_empty_bubble(
    live_app, browser, public_kb, size
):
    live_app.llm.script(Reply(status=500, error_message="upstream exploded", times=10))
    page = open_chat(browser, live_app, public_kb, size)
    ask(page, "How do I reset the router?")
    answer = page.locator(".message.assistant").last
    assert answer.locator(".error-box").is_visible()
    assert answer.locator(".bubble").count() == 0  # no empty white bubble above the error
    assert answer.locator(".feedback-bar").count() == 0
    live_app.llm.reset()
    live_app.llm.script(Reply(text="Hold RESET [1]."))
    answer.get_by_role("button", name="Retry").click()
    finished(page)
    assert "Hold RESET" in page.locator(".message.assistant .answer").inner_text()
    assert page.locator(".error-box").count() == 0
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_stop_keeps_what_was_shown_and_says_it_stopped(live_app, browser, public_kb, size):
    live_app.llm.script(Reply(text="word " * 400, delay_per_token=0.05))
    page = open_chat(browser, live_app, public_kb, size)
    page.fill("#question", "How do I reset the router?")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('.message.assistant .answer')?.innerText || '').length > 20"
    )
    page.keyboard.press("Escape")  # the keyboard shortcut for Stop
    finished(page)
    page.locator(".stopped").wait_for()
    page.wait_for_timeout(1500)  # the page replaces what it showed with what was kept
    shown = page.locator(".message.assistant .answer").inner_text()
    page.reload()
    assert page.locator(".message.assistant .answer").inner_text() == shown
    assert page.locator(".stopped").is_visible()
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_a_screenshot_alone_is_asked_and_shown_as_a_thumbnail(
    live_app, browser, public_kb, size, tmp_path
):
    shot = tmp_path / "error.png"
    shot.write_bytes(factories.text_image(["ROUTER", "Amber light"]))
    live_app.llm.script(Reply(text="The amber light means a firmware update [1]."))
    page = open_chat(browser, live_app, public_kb, size)
    page.set_input_files("#file-input", str(shot))
    page.locator("#send").click()  # no words: the screenshot is the question
    finished(page)
    thumb = page.locator(".message.user img.thumb")
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "firmware" in page.locator(".message.assistant .answer").inner_text()
    page.reload()
    thumb = page.locator(".message.user img.thumb")
    thumb.wait_for()
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth > 0)")
    assert no_sideways_scroll(page)
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_a_ninth_image_or_a_pdf_dropped_on_the_chat_is_explained(
    live_app, browser, public_kb, tmp_path, size
):
    shots = []
    for n in range(9):
        path = tmp_path / f"shot-{n}.png"
        path.write_bytes(factories.text_image([f"Screen {n}"]))
        shots.append(str(path))
    page = open_chat(browser, live_app, public_kb, size)
    page.set_input_files("#file-input", shots)
    assert page.locator("#attachments .chip").count() == 8
    assert "1 was left out" in page.locator("#attach-notice").inner_text()
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    page.set_input_files("#file-input", str(pdf))
    assert "manual.pdf is not an image" in page.locator("#attach-notice").inner_text()
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_welcome_starters_mode_and_dark_mode(live_app, browser, public_kb, size):
    page = open_chat(browser, live_app, public_kb, size, color_scheme="dark")
    assert "ministral-8b-2512" in page.locator("#mode").inner_text()  # which model, up front
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background not in ("rgb(255, 255, 255)", "rgb(247, 248, 250)")  # dark, as asked
    assert serious_violations(page) == []  # including contrast, in dark mode
    live_app.llm.script(Reply(text="It is updating its firmware [1]."))
    page.get_by_role("button", name="What does the amber light mean?").click()
    finished(page)
    assert page.locator("#welcome").count() == 0
    assert "firmware" in page.locator(".message.assistant .answer").inner_text()
    assert serious_violations(page) == []
    assert no_sideways_scroll(page)
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_keyboard_only_ask_attach_and_stop(live_app, browser, public_kb, size):
    live_app.llm.script(Reply(text="word " * 200, delay_per_token=0.05))
    page = open_chat(browser, live_app, public_kb, size)
    page.keyboard.press("Shift+Escape")  # focus the composer from anywhere
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.type("How do I reset the router?")
    page.keyboard.press("Tab")  # "ask only these documents", then Attach
    assert page.evaluate("document.activeElement.parentElement.id") == "doc-filter"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "attach"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.locator(".message.assistant.streaming").wait_for()
    assert page.locator("#stop").is_visible()
    page.keyboard.press("Escape")
    finished(page)
    assert page.locator(".stopped").count() == 1
    assert serious_violations(page) == []
    page.keyboard.press("Control+Shift+O")  # a new conversation
    page.wait_for_url(f"**/?kb={public_kb.slug}")
    assert page.locator(".message").count() == 0
    # The whole context: Chromium 156 sometimes never finishes closing just the page
    # right after a navigation that a key press started (page.close() hung for 600 s).
    page.context.close()

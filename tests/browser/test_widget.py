"""The help widget embedded in a page on another loopback origin (127.0.0.2), in Chromium."""

from __future__ import annotations

import base64
import time

import pytest
from playwright.sync_api import expect

from assistant.models import Message, Widget
from ingest.services import kb_get_or_create
from standin import Reply
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_CSS = """
* { color: red !important; font-size: 40px !important; font-family: serif !important; }
button { display: none !important; } div { background: yellow !important; }
textarea { visibility: hidden !important; }
"""


def page_html(app_url: str, widget: Widget) -> str:
    return (
        f"<!doctype html><html><head><style>{HOSTILE_CSS}</style></head><body><h1>Shop</h1>"
        f'<script src="{app_url}/static/docent/widget.js" data-widget="{widget.public_id}" async></script>'
        "</body></html>"
    )


@pytest.fixture
def shop(ingest_text, live_app):
    kb = kb_get_or_create(name="Shop help")
    ingest_text(
        kb, "returns.md", "# Returns\n\nReturns are accepted within 30 days with the receipt."
    )
    return kb


def make_widget(kb, origin: str, **fields) -> Widget:
    return Widget.objects.create(
        name="Shop",
        kb=kb,
        allowed_origins=origin,
        starter_questions="How do returns work?",
        **fields,
    )


def open_widget(page, *, ready: bool = True) -> None:
    """Open the panel; with `ready`, also wait until it has said something (its greeting,
    the restored conversation or why it is unavailable), as a visitor would."""
    page.locator("button.launcher").click()
    page.locator(".panel").wait_for(state="visible")
    if ready:
        page.locator(".log > *").first.wait_for()


def paste_image(page, png: bytes) -> None:
    page.locator("textarea").evaluate(
        """(box, b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "shot.png", {type: "image/png"}));
            box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        base64.b64encode(png).decode(),
    )


def test_links_in_widget_answers_leak_nothing_and_outside_ones_say_so(
    live_app, browser, host_site, shop
):
    """Before: the widget reset rel to "noopener", dropping noreferrer and nofollow."""
    site = host_site("127.0.0.2", "")
    widget = make_widget(shop, site)
    site = host_site("127.0.0.2", page_html(live_app.url, widget))
    Widget.objects.filter(pk=widget.pk).update(allowed_origins=site)
    live_app.llm.script(
        Reply(text="Within 30 days [1]. Details: [our page](https://evil.example/x).")
    )
    page = browser.new_page()
    page.goto(site)
    open_widget(page)
    page.locator("textarea").fill("How long do I have for returns?")
    page.keyboard.press("Enter")
    bubble = page.locator(".m.bot").last
    bubble.locator("a.outside").wait_for()
    links = bubble.locator("a").evaluate_all(
        "links => links.map(a => [a.className, a.rel, a.target])"
    )
    assert links == [
        ["cite", "noopener noreferrer nofollow", "_blank"],
        ["outside", "noopener noreferrer nofollow", "_blank"],
    ]
    assert "(evil.example)" in bubble.inner_text()
    sources = page.locator(".src a").evaluate_all("links => links.map(a => a.rel)")
    assert sources and set(sources) == {"noopener noreferrer nofollow"}
    page.close()


def test_visitor_chats_streams_cites_and_pastes_a_screenshot(live_app, browser, host_site, shop):
    origin = host_site("127.0.0.2", "")
    site = host_site("127.0.0.2", page_html(live_app.url, make_widget(shop, origin)))
    widget = Widget.objects.get()
    widget.allowed_origins = f"{origin}\n{site}"
    widget.save()
    live_app.llm.script(
        Reply(
            text="You have 30 days to return items [1]. " + "Keep the receipt. " * 25,
            delay_per_token=0.03,
        )
    )
    page = browser.new_page()
    page.goto(site)
    open_widget(page)
    expect(page.locator(".log")).to_contain_text("Ask me anything")  # once the session is up
    page.locator(".starters button").click()  # a starter question
    bubble = page.locator(".m.bot").last
    lengths = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.locator("button.stop").is_visible():
        lengths.add(len(bubble.inner_text()))
        time.sleep(0.05)
    assert len([n for n in lengths if n > 1]) >= 3, lengths  # it streamed
    assert "30 days" in bubble.inner_text()
    cite = bubble.locator("a.cite").first
    assert cite.get_attribute("href").startswith(f"{live_app.url}/widget/{widget.public_id}/cite/")
    with page.context.expect_page() as opened:
        page.locator(".src a").first.click()
    assert "Returns are accepted within 30 days" in opened.value.locator(".page-text").inner_text()

    paste_image(page, factories.text_image(["Order #4411 refund pending"]))
    assert page.locator(".tray img").count() == 1
    page.locator("textarea").fill("Why is this refund pending?")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => !document.querySelector('[data-docent-widget]').shadowRoot.querySelector('button.stop').offsetParent"
    )
    assert live_app.llm.chat_requests[-1].n_images == 1
    assert "4411" in Message.objects.filter(role="user").last().image_text

    page.reload()  # the conversation survives a page load
    open_widget(page)
    page.wait_for_function(
        "() => document.querySelector('[data-docent-widget]').shadowRoot.querySelectorAll('.m.user').length === 2"
    )
    page.locator("button.new").click()
    assert page.locator(".m.user").count() == 0
    page.close()


def test_host_page_css_does_not_reach_the_widget(live_app, browser, host_site, shop):
    widget = make_widget(shop, "")
    site = host_site("127.0.0.2", page_html(live_app.url, widget))
    widget.allowed_origins = site
    widget.save()
    page = browser.new_page()
    page.goto(site)
    launcher = page.locator("button.launcher")
    launcher.wait_for(state="visible")  # `button { display: none !important }` did not hide it
    open_widget(page)
    styles = page.locator("textarea").evaluate(
        "el => { const s = getComputedStyle(el); return [s.visibility, s.color, s.fontSize]; }"
    )
    assert styles[0] == "visible" and styles[1] != "rgb(255, 0, 0)" and styles[2] == "14px"
    assert (
        page.locator("h1").evaluate("el => getComputedStyle(el).color") == "rgb(255, 0, 0)"
    )  # host CSS works there
    page.close()


def test_unlisted_origin_shows_unavailable_and_is_refused(live_app, browser, host_site, shop):
    widget = make_widget(shop, "http://127.0.0.2:1")  # some other page, not this one
    site = host_site("127.0.0.3", page_html(live_app.url, widget))
    page = browser.new_page()
    blocked = []
    page.on("requestfailed", lambda r: blocked.append(r.url) if "/session" in r.url else None)
    page.goto(site)
    open_widget(page)
    page.wait_for_function(
        "() => document.querySelector('[data-docent-widget]').shadowRoot.querySelector('.log').innerText.includes('unavailable')"
    )
    assert blocked  # no CORS grant, so the browser withholds the answer from the page
    assert not page.locator("textarea").is_visible()  # before: a live box, and a TypeError
    assert not page.locator("button.send").is_visible()
    import httpx

    direct = httpx.post(
        f"{live_app.url}/widget/api/{widget.public_id}/session", json={}, headers={"Origin": site}
    )
    assert direct.status_code == 403 and "Access-Control-Allow-Origin" not in direct.headers
    assert not live_app.llm.chat_requests
    page.close()


def test_quota_message_shows_when_the_quota_runs_out(live_app, browser, host_site, shop):
    widget = make_widget(shop, "", daily_quota_per_visitor=1)
    site = host_site("127.0.0.2", page_html(live_app.url, widget))
    widget.allowed_origins = site
    widget.save()
    page = browser.new_page()
    page.goto(site)
    open_widget(page)
    for question in ("How do returns work?", "And exchanges?"):
        page.locator("textarea").fill(question)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => !document.querySelector('[data-docent-widget]').shadowRoot.querySelector('button.stop').offsetParent"
        )
    expect(page.locator(".log")).to_contain_text("reached today's limit")
    assert len(live_app.llm.chat_requests) == 1
    page.close()


def widget_on_site(live_app, host_site, shop) -> str:
    widget = make_widget(shop, "")
    site = host_site("127.0.0.2", page_html(live_app.url, widget))
    widget.allowed_origins = site
    widget.save()
    return site


def test_a_question_typed_before_the_widget_is_ready_is_asked_not_dropped(
    live_app, browser, host_site, shop
):
    site = widget_on_site(live_app, host_site, shop)
    live_app.llm.script(Reply(text="Returns take 30 days [1]."))
    page = browser.new_page()
    held = []  # the first session request, answered only after the visitor has asked
    page.route(
        "**/widget/api/*/session",
        lambda route: route.continue_() if held else held.append(route),
    )
    page.goto(site)
    open_widget(page, ready=False)
    page.locator("textarea").fill("How do returns work?")
    page.keyboard.press("Enter")
    assert held and not live_app.llm.chat_requests
    held[0].continue_()
    page.locator(".srcs").wait_for()
    assert "30 days" in page.locator(".m.bot").last.inner_text()
    assert page.locator(".m.user").all_inner_texts() == ["How do returns work?"]
    page.close()


@pytest.mark.parametrize("size", [(1366, 768), (390, 844)], ids=["desktop", "phone"])
def test_the_widget_is_a_dialog_the_keyboard_can_use_and_full_screen_on_a_phone(
    live_app, browser, host_site, shop, size
):
    site = widget_on_site(live_app, host_site, shop)
    live_app.llm.script(
        Reply(
            text="Returns take 30 days [1].\n\n| Step | Where |\n| --- | --- |\n"
            "| Pack | `box-1` |\n\n```\nreturn --order 4411\n```"
        )
    )
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(site)
    launcher = page.locator("button.launcher")
    launcher.wait_for(state="visible")
    assert launcher.get_attribute("aria-expanded") == "false"
    open_widget(page)
    assert launcher.get_attribute("aria-expanded") == "true"
    panel = page.locator(".panel").bounding_box()
    if size[0] < 480:  # a phone: the whole screen, not a floating box
        assert panel["x"] == 0 and panel["width"] == size[0] and panel["height"] == size[1]
    page.locator("textarea").fill("How do returns work?")
    page.keyboard.press("Enter")
    page.locator(".srcs").wait_for()
    bot = page.locator(".m.bot").last
    assert "monospace" in bot.locator("pre").evaluate("n => getComputedStyle(n).fontFamily")
    assert bot.locator("td").first.evaluate("n => getComputedStyle(n).borderTopStyle") == "solid"
    assert page.locator(".src a .name").all_text_contents() == ["returns.md"]
    bot.locator("a.cite").first.click()  # the passage, inline under the answer
    assert "30 days" in bot.locator(".peek").inner_text()
    for _ in range(12):  # Tab stays inside the open panel
        page.keyboard.press("Tab")
        inside = page.evaluate(
            "() => { const r = document.querySelector('[data-docent-widget]').shadowRoot;"
            " return !!(r.activeElement && r.querySelector('.panel').contains(r.activeElement)); }"
        )
        assert inside
    page.keyboard.press("Escape")
    assert not page.locator(".panel").is_visible()
    assert (
        page.evaluate(
            "() => document.querySelector('[data-docent-widget]').shadowRoot.activeElement.className"
        )
        == "launcher"
    )
    page.close()


SIZES = [(1366, 768), (390, 844)]


def shadow(page, expression: str):
    """Evaluate `expression` with `r` bound to the widget's shadow root."""
    return page.evaluate(
        f"() => {{ const r = document.querySelector('[data-docent-widget]').shadowRoot; return {expression}; }}"
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_a_visitor_rates_an_answer_changes_the_vote_and_finds_it_after_a_reload(
    live_app, browser, host_site, shop, size
):
    from assistant.models import Feedback

    site = widget_on_site(live_app, host_site, shop)
    live_app.llm.script(Reply(text="Returns are accepted within 30 days [1]."))
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(site)
    open_widget(page)
    page.locator("textarea").fill("How do returns work?")
    page.keyboard.press("Enter")
    bar = page.locator(".rate")
    bar.wait_for()
    assert "Was this helpful?" in bar.inner_text()
    up, down = (
        bar.get_by_role("button", name="Helpful", exact=True),
        bar.get_by_role("button", name="Not helpful"),
    )
    for button in (up, down):  # the thumbs are drawn, inside the panel, not cut off
        box = button.locator("svg").bounding_box()
        assert box and box["width"] >= 14 and box["height"] >= 14
        assert button.locator("path").get_attribute("d")
    panel = page.locator(".panel").bounding_box()
    bar_box = bar.bounding_box()
    assert (
        bar_box["x"] >= panel["x"]
        and bar_box["x"] + bar_box["width"] <= panel["x"] + panel["width"]
    )
    assert shadow(
        page, "r.querySelector('.log').scrollWidth <= r.querySelector('.log').clientWidth"
    )
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    from tests.browser.test_controls import serious_violations

    # axe-core looks into the shadow root; the bare test host page itself is not ours.
    found = [v for v in serious_violations(page) if any("data-docent-widget" in n for n in v[2])]
    assert found == []
    up.click()
    page.wait_for_function(
        "() => document.querySelector('[data-docent-widget]').shadowRoot.querySelector('.rate .thanks').textContent.includes('Thanks')"
    )
    assert (
        up.get_attribute("aria-pressed") == "true" and down.get_attribute("aria-pressed") == "false"
    )
    assert list(Feedback.objects.values_list("rating", flat=True)) == [1]
    down.click()  # changing one's mind
    page.wait_for_function(
        "() => document.querySelector('[data-docent-widget]').shadowRoot.querySelector('.rate button[aria-label=\"Not helpful\"]').getAttribute('aria-pressed') === 'true'"
    )
    assert up.get_attribute("aria-pressed") == "false"
    assert list(Feedback.objects.values_list("rating", flat=True)) == [-1]
    assert Feedback.objects.get().owner_key.startswith("widget:")

    page.reload()  # the vote is shown again with the conversation
    open_widget(page)
    page.locator(".rate").wait_for()
    restored = page.locator(".rate").get_by_role("button", name="Not helpful")
    assert restored.get_attribute("aria-pressed") == "true"
    assert "Thanks" in page.locator(".rate").inner_text()
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_the_admin_previews_the_widget_as_you_type_without_asking_anyone(
    live_app, browser, shop, size
):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-pass-123")
    widget = make_widget(shop, "https://shop.example")
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    asked, refused = [], []
    page.on("request", lambda r: asked.append(r.url) if "/widget/api/" in r.url else None)
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{live_app.url}/admin/login/?next=/admin/assistant/widget/{widget.pk}/change/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "boss-pass-123")
    page.click("input[type=submit]")
    page.locator("#docent-widget-preview").wait_for()
    preview = page.locator("#docent-widget-preview")
    preview.locator(".starters button").wait_for()  # drawn by widget.js, styled under the CSP
    assert preview.locator(".title").inner_text() == "Help"
    assert preview.locator(".starters button").inner_text() == "How do returns work?"
    assert preview.locator(".rate svg").count() == 2
    launcher = preview.locator("button.launcher")
    assert launcher.evaluate("n => getComputedStyle(n).borderRadius") == "50%"
    snippet = page.locator("#docent-snippet").inner_text()
    assert snippet == (
        f'<script src="{live_app.url}/static/docent/widget.js" data-widget="{widget.public_id}" async></script>'
    )
    assert "https://shop.example" in page.locator("#docent-snippet-where").inner_text()

    page.fill("#id_title", "Ask Shop")
    page.fill("#id_greeting", "Hello from the shop!")
    page.locator("#id_color").evaluate(
        "n => { n.value = '#aa3300'; n.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.fill("#id_allowed_origins", "")
    assert preview.locator(".title").inner_text() == "Ask Shop"
    assert "Hello from the shop!" in preview.locator(".log").inner_text()
    assert launcher.evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(170, 51, 0)"
    assert "No site is listed" in page.locator("#docent-snippet-where").inner_text()
    box = preview.locator(".panel").bounding_box()  # in the page, not over it, on a phone too
    assert box["x"] >= 0 and box["x"] + box["width"] <= size[0] and box["height"] < size[1]
    assert asked == [] and refused == []
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_a_cited_source_opens_in_the_widgets_colours_without_docents_navigation(
    live_app, browser, shop, size
):
    from assistant.widgets import WidgetSession, citation_link
    from ingest.models import Chunk

    widget = make_widget(shop, "https://shop.example", title="Shop help", color="#aa3300")
    chunk = Chunk.objects.get(document__kb=shop)
    source = {"document_id": chunk.document_id, "pages": [], "chunk_ids": [chunk.pk]}
    link = citation_link(session=WidgetSession(widget, "https://shop.example", "v"), source=source)
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(live_app.url + link)
    bar = page.locator(".reader-bar")
    assert bar.inner_text().startswith("Shop help")
    assert bar.evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(170, 51, 0)"
    assert page.locator("nav, .topbar, a[href*='login']").count() == 0
    assert page.locator("h1.doc-title").inner_text() == "returns.md"
    assert "within 30 days" in page.locator("mark").inner_text()
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.close()

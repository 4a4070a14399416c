"""Stored XSS, in Chromium: hostile document text, file names and model output stay text.

An attacker controls what documents say, what their files are called (uploads, and anyone
who can get a file into a knowledge base), what a visitor asks and writes as feedback, and,
through prompt injection, what the model answers. Each of those carries payloads
(``<img onerror>``, ``<script>``, ``"><svg onload>``, ``javascript:`` links, Markdown
links, raw HTML in Markdown) that would set ``window.__xss`` or open a dialog if they ever
ran, and each is then shown where Docent shows it: the chat page (streamed and reloaded),
the documents page, the document view, the staff review pages, the Django admin and the
embeddable widget on another site.

Docent's pages are opened with Playwright's ``bypass_csp``, so the Content-Security-Policy
cannot hide an escaping bug: what is checked is the output encoding itself. Every page must
end with no ``window.__xss``, no dialog, no element carrying an injected handler, script or
``javascript:`` URL (shadow roots included), and with the payload visible literally as text.
A separate test shows the detector works (an injected handler does fire without the CSP) and
that, with the real CSP, the pages trigger no violation while an injected handler is blocked.
The admin pages are also checked without a browser: the payloads appear there escaped only.

The world (users, documents, a visitor's hostile conversation) is built once for the module
on one live app (uvicorn + worker), and flushed at the end.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import Client
from django.utils.html import escape

from assistant.models import Conversation, Widget
from ingest.models import Chunk, Document
from ingest.services import document_create, kb_get_or_create, kb_update
from standin import Reply

from .support import ingest, sse_events

pytestmark = [pytest.mark.browser]


def img(where: str) -> str:
    return f"<img src=x onerror=\"window.__xss='{where}';alert('{where}')\">"


def script(where: str) -> str:
    return f"<script>window.__xss='{where}';alert('{where}')</script>"


def svg(where: str) -> str:
    return f"\"><svg onload=\"window.__xss='{where}';alert('{where}')\">"


# File names (a "/" would be cut away as a directory, so none of these closes a tag).
NAME_MD = svg("name-md") + "guide.md"
NAME_HTML = img("name-html") + "page.html"
NAME_FAILED = "<body onload=\"window.__xss='name-failed'\">tool.exe"
# Chromium sends '"' in an upload's name as %22 (as the HTML standard says), so no quotes.
NAME_UPLOAD = "<input autofocus onfocus=window.__xss=1>notes.md"
NAMES = (NAME_MD, NAME_HTML, NAME_UPLOAD)  # what a cited source can be called

DOC_MD = f"""# Setup {img("doc-heading")}

To reset the hub, hold the button for ten seconds. {script("doc-script")}

Then open [the settings](javascript:window.__xss='doc-link') and {svg("doc-svg")} check the light.
"""
# Entities in an HTML document become literal markup in its extracted text.
DOC_HTML = """<!doctype html><html><head><title>T</title></head><body>
<h1>Router</h1>
<ul><li>Unplug it &lt;script&gt;window.__xss='html-script'&lt;/script&gt; first.</li></ul>
<p>Press reset. &lt;img src=x onerror="window.__xss='html-entity'"&gt; then wait a minute.</p>
<script>window.__xss='html-raw-script'</script>
</body></html>
"""
UPLOAD_TEXT = f"# Upload\n\nThe fan spins at night. {img('upload-text')}\n"

QUESTION = "<svg onload=\"window.__xss='question'\"> reset?"
FEEDBACK = img("feedback") + " wrong"
REASONING = img("reasoning") + " thinking it over"
ERROR_TEXT = img("error") + " provider failed"
ANSWER = (
    "Hold the button for ten seconds [1].\n\n"
    f"{img('answer-img')} and {script('answer-script')}\n\n"
    "See [the guide](javascript:window.__xss='answer-link') "
    "or [1](javascript:window.__xss='answer-cite').\n\n"
    "<a href=\"javascript:window.__xss='answer-a'\">raw link</a> "
    "![pic](x\" onerror=\"window.__xss='answer-md-img')\n\n"
    "<javascript:window.__xss='answer-autolink'>\n\n"
    "| step | note |\n|---|---|\n| one | <svg onload=\"window.__xss='answer-table'\"> |\n"
)
# A follow-up is first rewritten to stand alone (one plain completion), then answered.
FOLLOW_UP_REWRITE = Reply(text="What comes after resetting the hub?")
# What must be visible, literally, wherever the answer is shown.
ANSWER_SHOWN = [
    img("answer-img"),
    script("answer-script"),
    "[the guide](javascript:window.__xss='answer-link')",
]
# Raw markup that must never reach any page's HTML unescaped.
RAW_MARKERS = [
    "<img src=x onerror",
    "<script>window.__xss",
    "<svg onload",
    "<body onload",
    "<input autofocus",
]

# Walks the document and every open shadow root for anything a payload could have created.
INSPECT = """() => {
  const bad = [];
  const urlAttrs = ["href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"];
  const visit = (root) => {
    for (const el of root.querySelectorAll("*")) {
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        const value = attr.value;
        if (name.startsWith("on") && value.includes("__xss")) bad.push(`<${el.localName} ${name}>`);
        if (urlAttrs.includes(name) && /^\\s*javascript:/i.test(value)) bad.push(`<${el.localName} ${name}=javascript:>`);
        if (name === "srcdoc") bad.push(`<${el.localName} srcdoc>`);
      }
      if (el.localName === "script" && el.textContent.includes("__xss")) bad.push("<script>__xss");
      if (el.localName === "img" && el.getAttribute("src") === "x") bad.push("<img src=x>");
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  return { xss: window.__xss === undefined ? null : String(window.__xss), bad };
}"""


# --------------------------------------------------------------------------------------------
# the world
# --------------------------------------------------------------------------------------------


class World:
    def __init__(self, tools, app) -> None:
        self.app = app
        self.boss = get_user_model().objects.create_user(
            "boss", password="pw-boss-123", is_staff=True, is_superuser=True
        )
        self.kb = kb_update(kb=kb_get_or_create(name="Hostile Desk"), visibility="public")
        self.other_kb = kb_update(kb=kb_get_or_create(name="Other Desk"), visibility="public")
        ingest(tools, self.kb, NAME_MD, DOC_MD)
        ingest(tools, self.kb, NAME_HTML, DOC_HTML)
        self.md = Document.objects.get(kb=self.kb, filename=NAME_MD)
        self.html = Document.objects.get(kb=self.kb, filename=NAME_HTML)
        self.failed = document_create(
            kb=self.kb, filename=NAME_FAILED, content=ContentFile(b"\x7fELF\x02\x01" + bytes(64))
        ).document
        assert self.failed.status == "failed"
        self.widget = Widget.objects.create(
            name="Help",
            kb=self.kb,
            title=img("widget-title"),
            greeting=script("widget-greeting"),
            starter_questions=svg("widget-starter"),
        )
        self.visitor_conversation = self._visitor_conversation()
        client = Client()
        client.force_login(self.boss)
        self.staff_session = client.cookies["sessionid"].value

    def _visitor_conversation(self) -> Conversation:
        """An anonymous visitor asks, gets the hostile answer, leaves feedback; then an error."""
        self.app.llm.reset()
        self.app.llm.script(
            Reply(text=ANSWER, reasoning=REASONING),
            FOLLOW_UP_REWRITE,
            Reply.error_event(message=ERROR_TEXT, after_tokens=2),
        )
        with httpx.Client(base_url=self.app.url, timeout=60) as visitor:
            visitor.get(f"/?kb={self.kb.slug}").raise_for_status()
            csrf = {"X-CSRFToken": visitor.cookies["csrftoken"]}
            first = visitor.post(
                "/chat/stream", data={"kb": self.kb.slug, "question": QUESTION}, headers=csrf
            )
            events = dict(sse_events(first.content))
            assert events["done"]["status"] == "complete", events
            message = events["done"]["message_id"]
            visitor.post(
                f"/messages/{message}/feedback",
                data={"rating": "-1", "comment": FEEDBACK},
                headers=csrf,
            ).raise_for_status()
            second = visitor.post(
                "/chat/stream",
                data={
                    "kb": self.kb.slug,
                    "question": "and then?",
                    "conversation": events["conversation"]["id"],
                },
                headers=csrf,
            )
            assert dict(sse_events(second.content))["done"]["status"] == "error"
        conversation = Conversation.objects.get(uid=events["conversation"]["id"])
        answer = conversation.messages.filter(role="assistant").first()
        assert answer.content == ANSWER and answer.reasoning == REASONING
        assert conversation.messages.filter(error__contains=ERROR_TEXT).exists()
        assert answer.feedback.get().comment == FEEDBACK
        return conversation

    def context(self, browser, *, staff: bool = False, bypass_csp: bool = True):
        context = browser.new_context(bypass_csp=bypass_csp)
        if staff:
            context.add_cookies(
                [{"name": "sessionid", "value": self.staff_session, "url": self.app.url}]
            )
        return context


@pytest.fixture(scope="module")
def world(live_app_module, django_db_setup, django_db_blocker, tools) -> Iterator[World]:
    try:
        with django_db_blocker.unblock():
            built = World(tools, live_app_module)
        yield built
    finally:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """The database open without a wrapping transaction: the live app shares it.

    Deliberately not named `db` or `transactional_db`: pytest-django runs tests that ask for
    neither after all the others, so this module, the one that starts Chromium (whose
    Playwright event loop then occupies the main thread for the rest of the session), runs
    after the tests that stream responses through ``async_to_sync``.
    """
    with django_db_blocker.unblock():
        yield


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class Watched:
    """A page whose dialogs are recorded (and dismissed) instead of blocking it."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self, where: str) -> None:
        self.page.wait_for_timeout(300)  # a failed <img src=x> fires onerror at once
        state = self.page.evaluate(INSPECT)
        assert state["xss"] is None, f"{where}: a payload ran: window.__xss = {state['xss']}"
        assert not self.dialogs, f"{where}: a payload opened {self.dialogs}"
        assert not state["bad"], f"{where}: payload markup became elements: {state['bad']}"

    def assert_shows(
        self, selector: str, *texts: str, where: str = "", folded: bool = False
    ) -> None:
        """Each text is shown literally in the first `selector` (`folded`: inside a closed
        <details>, so present as text but not rendered)."""
        element = self.page.locator(selector).first
        shown = (element.text_content() if folded else element.inner_text()) or ""
        for text in texts:
            assert text in shown, f"{where}: {text!r} is not shown as text in {selector}: {shown!r}"


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def open_page(context, url: str) -> Watched:
    watched = Watched(context.new_page())
    watched.page.goto(url)
    return watched


# --------------------------------------------------------------------------------------------
# the detector itself
# --------------------------------------------------------------------------------------------


def test_the_detector_sees_a_payload_that_runs(world, live_db, browser):
    """Without the CSP an injected handler does run, and the checks below would say so."""
    context = world.context(browser)
    page = open_page(context, f"{world.app.url}/documents/{world.md.pk}/")
    page.page.evaluate(
        """(payload) => { const box = document.createElement("div"); box.innerHTML = payload;
                          document.body.append(box); }""",
        img("control"),
    )
    with pytest.raises(AssertionError, match="control"):
        page.assert_clean("control")
    context.close()


# --------------------------------------------------------------------------------------------
# document text and file names
# --------------------------------------------------------------------------------------------


def test_document_view_shows_text_and_names_as_text(world, live_db, browser):
    context = world.context(browser)  # anonymous: the knowledge base is public
    md = open_page(context, f"{world.app.url}/documents/{world.md.pk}/")
    md.assert_clean("markdown document")
    md.assert_shows("h1", NAME_MD, where="markdown document")
    assert md.page.title().startswith(NAME_MD)
    md.assert_shows(
        ".page-text",
        script("doc-script"),
        "[the settings](javascript:window.__xss='doc-link')",
        svg("doc-svg"),
        where="markdown document",
    )
    page = open_page(context, f"{world.app.url}/documents/{world.html.pk}/")
    page.assert_clean("HTML document")
    page.assert_shows("h1", NAME_HTML, where="HTML document")
    page.assert_shows(
        ".page-text",
        "<script>window.__xss='html-script'</script>",
        "<img src=x onerror=\"window.__xss='html-entity'\">",
        where="HTML document",
    )
    assert "html-raw-script" not in (page.page.text_content(".page-text") or "")
    failed = open_page(context, f"{world.app.url}/documents/{world.failed.pk}/")
    failed.assert_clean("failed document")
    failed.assert_shows("h1", NAME_FAILED, where="failed document")
    context.close()


def test_documents_page_shows_names_as_text_and_uploads_a_hostile_name(world, live_db, browser):
    context = world.context(browser, staff=True)
    page = open_page(context, f"{world.app.url}/kb/{world.kb.slug}/documents/")
    rows = page.page.locator("#doc-rows tr[data-id]")
    poll(lambda: rows.count() >= 3, 30, "the document rows")
    page.assert_clean("documents page")
    page.assert_shows("#doc-rows", NAME_MD, NAME_HTML, NAME_FAILED, where="documents page")

    page.page.set_input_files(
        "#files",
        files=[{"name": NAME_UPLOAD, "mimeType": "text/markdown", "buffer": UPLOAD_TEXT.encode()}],
    )
    page.page.locator("#uploads li").first.wait_for()
    page.assert_shows("#uploads", NAME_UPLOAD, where="upload progress")
    page.assert_clean("upload progress")
    poll(
        lambda: Document.objects.filter(kb=world.kb, filename=NAME_UPLOAD, status="ready").exists(),
        120,
        "the uploaded document to be indexed",
    )
    poll(lambda: rows.count() >= 4, 30, "the new row")
    page.assert_clean("documents page after the upload")
    page.assert_shows("#doc-rows", NAME_UPLOAD, where="documents page after the upload")
    uploaded = Document.objects.get(kb=world.kb, filename=NAME_UPLOAD)
    view = open_page(context, f"{world.app.url}/documents/{uploaded.pk}/")
    view.assert_clean("uploaded document")
    view.assert_shows("h1", NAME_UPLOAD, where="uploaded document")
    view.assert_shows(".page-text", img("upload-text"), where="uploaded document")
    context.close()


# --------------------------------------------------------------------------------------------
# model output
# --------------------------------------------------------------------------------------------


def wait_for_answer(page) -> None:
    poll(
        lambda: (
            page.locator(".message.assistant").count() > 0
            and page.locator(".message.assistant.streaming").count() == 0
        ),
        30,
        "the answer to finish",
    )


def test_chat_page_shows_model_output_as_text_streamed_and_reloaded(world, live_db, browser):
    world.app.llm.reset()
    world.app.llm.script(
        Reply(text=ANSWER, reasoning=REASONING, delay_per_token=0.005),
        FOLLOW_UP_REWRITE,
        Reply.error_event(message=ERROR_TEXT, after_tokens=2),
    )
    context = world.context(browser)  # an anonymous visitor
    page = open_page(context, f"{world.app.url}/?kb={world.kb.slug}")
    page.page.fill("#question", QUESTION)
    page.page.keyboard.press("Enter")
    wait_for_answer(page.page)

    def check(where: str) -> None:
        page.assert_clean(where)
        page.assert_shows(".message.user .bubble", QUESTION, where=where)
        page.assert_shows(".message.assistant .bubble", *ANSWER_SHOWN, where=where)
        page.assert_shows(".message.assistant .reasoning pre", REASONING, where=where, folded=True)
        cite = page.page.locator(".message.assistant .bubble a.cite").first
        assert cite.get_attribute("href").startswith("/documents/"), where  # Markdown ran
        sources = page.page.locator(".message.assistant .sources .source-name").all_text_contents()
        assert sources and all(s.startswith(NAMES) for s in sources), sources

    check("streamed answer")
    page.page.fill("#question", "and then?")
    page.page.keyboard.press("Enter")
    poll(lambda: page.page.locator(".message.assistant").count() == 2, 10, "a second answer")
    wait_for_answer(page.page)
    page.assert_shows(".message.assistant >> nth=1 >> .error", ERROR_TEXT, where="streamed error")
    page.assert_clean("streamed error")

    assert "c=" in page.page.url  # the page put the conversation in its address
    page.page.reload()
    check("reloaded conversation")
    page.assert_shows(".message.assistant >> nth=1 >> .error", ERROR_TEXT, where="stored error")
    page.assert_shows(".recent", QUESTION, where="recent conversations")
    context.close()


def test_staff_review_shows_a_visitors_conversation_as_text(world, live_db, browser):
    context = world.context(browser, staff=True)
    url = f"{world.app.url}/kb/{world.kb.slug}/review/"
    listing = open_page(context, url)
    listing.assert_clean("conversations page")
    listing.assert_shows(".doc-table", QUESTION, where="conversations page")
    review = open_page(context, f"{url}{world.visitor_conversation.uid}/")
    review.assert_clean("conversation review")
    review.assert_shows("h1", QUESTION, where="conversation review")
    review.assert_shows(".message.user .bubble", QUESTION, where="conversation review")
    review.assert_shows(".message.assistant .bubble", *ANSWER_SHOWN, where="conversation review")
    review.assert_shows(".feedback", FEEDBACK, where="conversation review")
    review.assert_shows(".messages", ERROR_TEXT, where="conversation review")
    analytics = open_page(context, f"{world.app.url}/kb/{world.kb.slug}/analytics/")
    analytics.assert_clean("analytics page")
    analytics.assert_shows(".unanswered", QUESTION, where="analytics, unanswered questions")
    analytics.assert_shows(".comments", FEEDBACK, where="analytics, comments")
    context.close()


# --------------------------------------------------------------------------------------------
# the Django admin
# --------------------------------------------------------------------------------------------


def admin_pages(world: World) -> dict[str, tuple[str, list[str]]]:
    """name -> (path, what it must show as text)."""
    conversation = world.visitor_conversation
    answer = conversation.messages.filter(role="assistant").first()
    chunk = Chunk.objects.filter(document=world.md).order_by("ordinal").first()
    return {
        "documents": ("/admin/ingest/document/", [NAME_MD, NAME_HTML, NAME_FAILED]),
        "document": (f"/admin/ingest/document/{world.md.pk}/change/", [NAME_MD]),
        "failed document": (f"/admin/ingest/document/{world.failed.pk}/change/", [NAME_FAILED]),
        "document search": (f"/admin/ingest/document/?{urlencode({'q': NAME_HTML})}", [NAME_HTML]),
        "delete document": (f"/admin/ingest/document/{world.html.pk}/delete/", [NAME_HTML]),
        "chunks": ("/admin/ingest/chunk/", [NAME_MD]),
        "chunk": (
            f"/admin/ingest/chunk/{chunk.pk}/change/",
            [img("doc-heading"), script("doc-script")],
        ),
        "conversations": ("/admin/assistant/conversation/", [QUESTION]),
        "conversation": (
            f"/admin/assistant/conversation/{conversation.pk}/change/",
            [QUESTION, img("answer-img")],
        ),
        "message": (
            f"/admin/assistant/message/{answer.pk}/change/",
            [img("answer-img"), REASONING],
        ),
        "feedback": ("/admin/assistant/feedback/", [FEEDBACK]),
        "widget": (f"/admin/assistant/widget/{world.widget.pk}/change/", []),
    }


def test_admin_pages_show_hostile_content_as_text(world, live_db, browser):
    context = world.context(browser, staff=True)
    for name, (path, shown) in admin_pages(world).items():
        page = open_page(context, world.app.url + path)
        assert page.page.locator("#content").count() == 1, f"{name}: not an admin page"
        page.assert_clean(f"admin {name}")
        body = page.page.inner_text("#content")
        for text in shown:
            assert text in body, f"admin {name}: {text!r} is not shown"
        page.page.close()
    context.close()


def test_admin_pages_escape_hostile_content(world, live_db):
    """Without a browser: the admin's HTML holds the payloads escaped, never raw."""
    client = Client()
    client.force_login(world.boss)
    for name, (path, shown) in admin_pages(world).items():
        response = client.get(path)
        assert response.status_code == 200, f"admin {name}: {response.status_code}"
        page = response.content.decode()
        raw = [marker for marker in RAW_MARKERS if marker in page]
        assert not raw, f"admin {name}: raw markup in the HTML: {raw}"
        for text in shown:
            assert escape(text) in page, f"admin {name}: {text!r} is not in the page, escaped"


def test_docent_pages_escape_hostile_content(world, live_db):
    """Without a browser: Docent's server-rendered pages hold the payloads escaped only."""
    client = Client()
    client.force_login(world.boss)
    review = f"/kb/{world.kb.slug}/review/"
    pages = {
        f"/documents/{world.md.pk}/": [NAME_MD, script("doc-script")],
        f"/documents/{world.html.pk}/": [NAME_HTML],
        f"/documents/{world.failed.pk}/": [NAME_FAILED],
        review: [QUESTION],
        f"{review}{world.visitor_conversation.uid}/": [QUESTION, FEEDBACK, ERROR_TEXT],
        f"/kb/{world.kb.slug}/analytics/": [QUESTION, FEEDBACK],
    }
    for path, shown in pages.items():
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        page = response.content.decode()
        raw = [marker for marker in RAW_MARKERS if marker in page]
        assert not raw, f"{path}: raw markup in the HTML: {raw}"
        for text in shown:
            # Django's templates escape quotes too; the sanitiser (nh3) leaves them, as
            # text may: either way <, > and & are escaped.
            found = escape(text) in page or html.escape(text, quote=False) in page
            assert found, f"{path}: {text!r} is not in the page, escaped"


# --------------------------------------------------------------------------------------------
# the widget on another site
# --------------------------------------------------------------------------------------------


def test_widget_shows_model_output_names_and_config_as_text(world, live_db, browser, host_site):
    widget = world.widget
    site = host_site(
        "127.0.0.2",
        "<!doctype html><html><body><h1>Shop</h1>"
        f'<script src="{world.app.url}/static/docent/widget.js" data-widget="{widget.public_id}"'
        " async></script></body></html>",
    )
    Widget.objects.filter(pk=widget.pk).update(allowed_origins=site)
    world.app.llm.reset()
    world.app.llm.script(Reply(text=ANSWER, reasoning=REASONING, delay_per_token=0.005))
    # The host page has no CSP at all: nothing but the widget's own care protects it.
    context = world.context(browser)
    page = open_page(context, site)
    page.page.locator("button.launcher").click()
    page.page.locator(".panel").wait_for(state="visible")
    page.page.locator(".starters button").wait_for()
    page.assert_clean("widget greeting")
    page.assert_shows(".title", img("widget-title"), where="widget title")
    page.assert_shows(".log", script("widget-greeting"), where="widget greeting")
    page.assert_shows(".starters button", svg("widget-starter"), where="widget starter")

    page.page.locator("textarea").fill(QUESTION)
    page.page.keyboard.press("Enter")
    poll(lambda: page.page.locator(".src a").count() > 0, 30, "the widget's answer and sources")

    def check(where: str) -> None:
        page.assert_clean(where)
        page.assert_shows(".m.user", QUESTION, where=where)
        page.assert_shows(".m.bot >> nth=-1", *ANSWER_SHOWN, where=where)
        cite = page.page.locator(".m.bot a.cite").first
        assert cite.get_attribute("href").startswith(f"{world.app.url}/widget/"), where
        names = page.page.locator(".src a .name").all_text_contents()
        assert names and all(n.startswith(NAMES) for n in names), names

    check("widget answer")
    page.page.reload()  # the conversation comes back from the server, rendered there
    page.page.locator("button.launcher").click()
    poll(lambda: page.page.locator(".m.user").count() == 1, 15, "the restored conversation")
    check("restored widget conversation")

    source = page.page.locator(".src a").first.get_attribute("href")
    document = open_page(context, source)
    document.assert_clean("document opened from the widget")
    heading = document.page.inner_text("h1")
    assert heading in NAMES, heading
    if heading == NAME_MD:
        document.assert_shows(".page-text", script("doc-script"), where="widget document")
    context.close()


# --------------------------------------------------------------------------------------------
# the real Content-Security-Policy, enforced
# --------------------------------------------------------------------------------------------

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
});
"""


def test_under_the_real_csp_pages_break_no_rule_and_injected_script_is_blocked(
    world, live_db, browser
):
    context = world.context(browser, staff=True, bypass_csp=False)
    context.add_init_script(RECORD_VIOLATIONS)
    paths = [
        f"/?kb={world.kb.slug}",
        f"/documents/{world.md.pk}/",
        f"/documents/{world.html.pk}/",
        f"/kb/{world.kb.slug}/documents/",
        f"/kb/{world.kb.slug}/review/",
        f"/kb/{world.kb.slug}/review/{world.visitor_conversation.uid}/",
        f"/kb/{world.kb.slug}/analytics/",
        f"/admin/assistant/conversation/{world.visitor_conversation.pk}/change/",
        "/admin/ingest/document/",
    ]
    for path in paths:
        page = open_page(context, world.app.url + path)
        page.assert_clean(path)
        violations = page.page.evaluate("() => window.__violations")
        assert violations == [], f"{path}: the page broke its own CSP: {violations}"
        page.page.close()

    # The knowledge-base pickers work without inline handlers.
    page = open_page(context, f"{world.app.url}/?kb={world.kb.slug}")
    with page.page.expect_navigation(timeout=10_000):
        page.page.select_option("#kb-select", world.other_kb.slug)
    assert f"kb={world.other_kb.slug}" in page.page.url
    page.page.goto(f"{world.app.url}/kb/{world.kb.slug}/documents/")
    with page.page.expect_navigation(timeout=10_000):
        page.page.select_option("#kb-switch", world.other_kb.slug)
    assert page.page.url.endswith(f"/kb/{world.other_kb.slug}/documents/")
    assert page.page.evaluate("() => window.__violations") == []

    # A handler injected into the page is refused by the CSP, and the refusal is seen.
    page.page.evaluate(
        """(payload) => { const box = document.createElement("div"); box.innerHTML = payload;
                          document.body.append(box); }""",
        img("injected"),
    )
    page.page.wait_for_timeout(300)
    assert page.page.evaluate("() => window.__xss") is None
    assert page.dialogs == []
    violations = page.page.evaluate("() => window.__violations")
    assert any("script-src" in v for v in violations), violations
    context.close()

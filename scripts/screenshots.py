"""Screenshots of what people see, at a laptop (1366x768) and a phone (390x844) size.

Starts a throwaway Docent on loopback (the stand-in model, one public knowledge base with
a manual, a staff account, a widget), serves a customer page with the widget from a
second loopback address (127.0.0.2), and has Chromium (/usr/bin/chromium, never a
downloaded one) capture: the chat page with a cited answer (also in dark mode), the
documents page, the staff analytics page, an evaluation run and two runs compared in the
admin, the document viewer at a cited PDF page with the passage highlighted,
and the widget open on the customer's page.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Each picture is also checked the way a person would look at it: no sideways scroll.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from _app import Docent, FakeLLM, http_client  # noqa: E402

SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
PASSWORD = "screenshots only 1"
ANSWER = (
    "To clear **E-42**, open the paper tray and remove the jammed sheet [1]. Then:\n\n"
    "1. Close cover B until it clicks [1].\n2. Press *Resume* [2].\n\n"
    "The vendor also has [a troubleshooting page](https://support.example.com/e42)."
)
GUIDE_PAGES = [
    ("Installing the printer", "Unpack the printer and remove every orange tape. " * 30),
    (
        "Clearing error E-42",
        "Error E-42 means a sheet is stuck in the paper tray. Pull the tray out, remove "
        "the jammed sheet and push the tray back until it clicks. Close cover B and press "
        "Resume. If the error stays, switch the printer off for ten seconds. "
        + "Keep the tray loaded with no more than 250 sheets of plain paper. "
        * 20,
    ),
    ("Cleaning", "Wipe the rollers with a dry, lint-free cloth once a month. " * 30),
]


def guide_pdf() -> bytes:
    """A three-page printer guide as a real PDF (fpdf2, a development dependency)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20)
    for title, body in GUIDE_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 10, title)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 7, body)
    return bytes(pdf.output())


MANUAL = (
    "# Printer manual\n\n## Error codes\n\nError E-42 means the paper tray is jammed. "
    "Open the tray, remove the sheet, and close cover B until it clicks.\n\n"
    "## Resuming\n\nAfter clearing a jam, press Resume on the front panel."
)


def host_page(app_url: str, widget: str) -> ThreadingHTTPServer:
    body = (
        "<!doctype html><html><head><meta name='viewport' content='width=device-width'>"
        "<title>Shop</title></head><body style='font-family:sans-serif;margin:2rem'>"
        "<h1>Acme Printers</h1><p>Need help? Ask our assistant.</p>"
        f"<script src='{app_url}/static/docent/widget.js' data-widget='{widget}' async></script>"
        "</body></html>"
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# Three weeks of questions for the analytics page: mostly answered, some off-topic ("no
# match"), a few rated, some paraphrases of the same unanswered question.
HISTORY = """
import random
from datetime import timedelta
from django.utils import timezone
from assistant.models import Conversation, Feedback, Message
from ingest.models import KnowledgeBase
kb = KnowledgeBase.objects.get(slug='SLUG')
rng = random.Random(7)
asked = ['How do I clear error E-42?', 'How do I load paper?', 'What does the amber light mean?']
missed = ['Can it print on A3 paper?', 'Does it print A3?', 'Is A3 paper supported?',
          'Is there a duplex unit?', 'Who makes the toner?']
now = timezone.now()
for back in range(21):
    for n in range(rng.randint(3, 9)):
        off = rng.random() < 0.22
        question = rng.choice(missed if off else asked)
        c = Conversation.objects.create(kb=kb, owner_key=f'visitor:{back}-{n}', title=question)
        Message.objects.create(conversation=c, role='user', content=question)
        a = Message.objects.create(conversation=c, role='assistant', content='...',
            matched=not off, sources=[] if off else [{'document': 'printer-manual.md'}],
            model='ministral-8b-2512', prompt_tokens=900, completion_tokens=80)
        c.messages.update(created_at=now - timedelta(days=back, hours=n))
        if rng.random() < 0.25:
            Feedback.objects.create(message=a, owner_key=c.owner_key,
                rating=-1 if off or rng.random() < 0.2 else 1,
                comment='It does not say which trays take A3.' if off and n % 3 == 0 else '')
"""

# A question set, run as shipped and with word search only, for the evaluation pages.
RUNS = """
from assistant.evalruns import evaluation_run_execute, evaluation_run_queue
from assistant.models import QuestionSet
from assistant.tools import chat_tools
from ingest.models import KnowledgeBase
kb = KnowledgeBase.objects.get(slug='SLUG')
rows = [('How do I clear error E-42?', ['printer-manual.md', 'printer-guide.pdf']),
        ('What do I press after a jam?', ['printer-manual.md']),
        ('How many sheets does the tray hold?', ['printer-guide.pdf']),
        ('How often should the rollers be cleaned?', ['printer-guide.pdf']),
        ('What should I remove when unpacking?', ['printer-guide.pdf']),
        ('Which wine goes with fish?', []), ('Who painted the Mona Lisa?', [])]
qs = QuestionSet.objects.create(kb=kb, name='Printer FAQ', source_name='printer-faq.csv',
    questions=[{'id': str(n), 'text': t, 'expected': e} for n, (t, e) in enumerate(rows, 1)])
for mode, note in (('lexical', 'trying word search'), ('hybrid', 'as shipped')):
    run = evaluation_run_queue(question_set=qs, mode=mode, note=note)
    evaluation_run_execute(run=run, tools=chat_tools(kb))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    llm = FakeLLM(delay_per_token=0).start()
    app = Docent(llm=llm, kb_name="Printers")
    site = None
    problems: list[str] = []
    try:
        app.prepare()
        app._manage("collectstatic", "--noinput")  # as `make run` does: WhiteNoise serves them
        app.start()
        with http_client(timeout=120) as client:
            document = app.upload(client, "printer-manual.md", MANUAL)
            guide = app.upload(client, "printer-guide.pdf", guide_pdf(), "application/pdf")
            app.wait_settled(client, {document, guide}, timeout=180)
        widget = app._manage(
            "shell",
            "-c",
            "from assistant.models import Widget; from ingest.models import KnowledgeBase;"
            "from django.contrib.auth import get_user_model;"
            f"get_user_model().objects.create_superuser('staff', password={PASSWORD!r});"
            f"kb = KnowledgeBase.objects.get(slug={app.slug!r});"
            "print(Widget.objects.create(name='Shop', kb=kb, allowed_origins='', "
            "starter_questions='How do I clear E-42?').public_id)",
        ).splitlines()[-1]
        app._manage("shell", "-c", HISTORY.replace("SLUG", app.slug))
        app._manage("shell", "-c", RUNS.replace("SLUG", app.slug))
        site = host_page(app.url, widget)
        origin = f"http://127.0.0.2:{site.server_address[1]}"
        app._manage(
            "shell", "-c",
            f"from assistant.models import Widget; Widget.objects.filter(public_id={widget!r})"
            f".update(allowed_origins={origin!r})",
        )  # fmt: skip
        problems = capture(app, origin, document, args.out, llm)
    finally:
        if site is not None:
            site.shutdown()
            site.server_close()
        app.cleanup()
        llm.stop()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"screenshots in {args.out}")
    return 1 if problems else 0


def capture(app: Docent, origin: str, document: int, out: Path, llm: FakeLLM) -> list[str]:
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        for name, (width, height) in SIZES.items():
            phone = width < 720  # a phone has a touch screen, so it shows no keyboard hints
            context = browser.new_context(
                viewport={"width": width, "height": height}, has_touch=phone, is_mobile=phone
            )
            page = context.new_page()

            def shot(label: str, page=page, name=name) -> None:
                page.wait_for_timeout(300)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 0:
                    problems.append(f"{label} at {name} scrolls sideways by {overflow}px")
                page.screenshot(path=str(out / f"{label}-{name}.png"))

            llm.script({"text": ANSWER})
            page.goto(f"{app.url}/?kb={app.slug}")
            page.fill("#question", "How do I clear error E-42?")
            page.keyboard.press("Enter")
            try:
                page.locator(".message.assistant a.cite").first.wait_for(timeout=30000)
            except Exception:
                page.screenshot(path=str(out / f"failed-{name}.png"))
                raise
            page.wait_for_timeout(500)
            shot("chat")
            pdf_link = page.evaluate(
                "() => JSON.parse(document.querySelector('.message.assistant').dataset.passages)"
                ".filter(p => p.document.endsWith('.pdf')).map(p => p.url)[0] || ''"
            )
            page.click("#doc-filter summary")  # "ask only these documents", one chosen
            page.check("#doc-filter-list input >> nth=0")
            shot("chat-documents")
            page.keyboard.press("Escape")
            if page.locator("#menu-toggle").is_visible():  # phones: the drawer with the history
                page.click("#menu-toggle")
                shot("chat-drawer")
                page.keyboard.press("Escape")
            page.goto(f"{app.url}/accounts/login/")
            page.fill("#id_username", "staff")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{app.url}/kb/{app.slug}/documents/")
            shot("documents")
            if phone:  # the staff links sit in the account menu on a phone
                page.click(".account-menu > summary")
                shot("menu")
                page.keyboard.press("Escape")
            page.goto(f"{app.url}/kb/{app.slug}/analytics/")
            page.wait_for_function("() => window.Chart && Chart.getChart('outcomes-chart')")
            shot("analytics")
            page.goto(f"{app.url}/admin/assistant/evaluationrun/")
            page.locator("#result_list tbody th a").first.click()
            shot("evaluation-run")
            page.select_option("#compare-a", index=0)
            page.click("input[value=Compare]")
            shot("evaluation-compare")
            page.goto(f"{app.url}/admin/assistant/widget/")
            page.locator("#result_list tbody th a").first.click()
            page.locator("#docent-widget-preview").scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            shot("widget-admin")
            page.goto(f"{app.url}/documents/{document}/")
            shot("viewer")
            if not pdf_link:
                problems.append(f"no PDF passage was read for the answer at {name}")
            else:
                page.goto(f"{app.url}{pdf_link}")
                page.locator(".page.selected img").evaluate("img => img.decode()")
                if page.locator(".highlight").count() == 0:
                    problems.append(f"the cited PDF page has no highlight at {name}")
                shot("viewer-pdf")
            llm.script({"text": ANSWER})
            page.goto(origin)
            page.locator("[data-docent-widget]").wait_for()
            page.locator("button.launcher").click()
            page.locator(".starters button").first.click()
            page.locator(".m.bot a.cite").first.wait_for(timeout=30000)
            page.wait_for_timeout(500)
            shot("widget")
            context.close()
        dark = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
        page = dark.new_page()
        llm.script({"text": ANSWER})
        page.goto(f"{app.url}/?kb={app.slug}")
        page.fill("#question", "How do I clear error E-42?")
        page.keyboard.press("Enter")
        page.locator(".message.assistant .feedback-bar").wait_for(timeout=30000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "chat-dark-desktop.png"))
        dark.close()
        browser.close()
    return problems


if __name__ == "__main__":
    sys.exit(main())

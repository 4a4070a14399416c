"""In headless Chromium: the staff analytics page draws its charts, lists what went
unanswered (a question just asked included), and downloads the CSV, at both sizes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from standin import Reply
from tests.assistant.test_analytics import answered, rate
from tests.browser.test_controls import serious_violations
from tests.browser.test_history import ask, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = [(1366, 768), (390, 844)]


@pytest.fixture
def routers(live_app, staff_user, ingest_text):
    kb = kb_get_or_create(name="Routers")
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.PUBLIC)
    ingest_text(kb, "guide.md", "# Reset\n\nHold the reset pin for fifteen seconds.")
    today = timezone.localdate()
    for back in range(6):
        answered(kb, "How do I reset it?", day=today - timedelta(days=back))
    rate(answered(kb, "Why is the light amber?", day=today), -1, "It did not say")
    return kb


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
def test_staff_see_outcomes_unanswered_questions_and_download_them(
    live_app, browser, routers, size
):
    live_app.llm.script(Reply(text="Nothing in the guide covers that."))
    page = browser.new_page(accept_downloads=True)
    sign_in(page, live_app, routers, size)
    ask(page, "Who won the football world cup in 1954?")  # off-topic: "no match"

    page.goto(f"{live_app.url}/kb/{routers.slug}/analytics/?days=7")
    page.wait_for_function(
        "() => ['outcomes-chart', 'feedback-chart'].every(id =>"
        " window.Chart && Chart.getChart(document.getElementById(id)))"
    )
    tiles = page.locator(".tiles").inner_text()
    assert "8\nquestions" in tiles and "0 ·  1\nhelpful · not helpful" in tiles
    unanswered = page.locator(".unanswered").inner_text()
    assert "Who won the football world cup in 1954?" in unanswered and "No match" in unanswered
    assert "Why is the light amber?" in unanswered and "Not helpful" in unanswered
    assert "It did not say" in page.locator(".comments").inner_text()
    drawn = page.evaluate(
        "() => Chart.getChart(document.getElementById('outcomes-chart')).data.datasets"
        ".map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])"
    )
    assert ["No match", 1] in drawn and ["Answered from sources", 7] in drawn
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert serious_violations(page) == []

    with page.expect_download() as download:
        page.click("text=Download CSV")
    rows = download.value.path().read_text().splitlines()
    assert rows[0].startswith("answered_at,conversation,question,outcome") and len(rows) == 9
    page.close()

"""A member's own account in a real browser: change the password, reset it by email, and
the pages they land on when something is missing; the members picker on the KB settings.

These run on pytest-django's in-process live server, so the reset email lands in
django.core.mail.outbox (the test run's locmem backend).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from tests.browser.test_controls import serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = [(1366, 768), (390, 844)]
IDS = ["desktop", "phone"]
OLD, NEW = "pw-mia-old-123", "lantern river 77"


@pytest.fixture
def mia(transactional_db):
    user = get_user_model().objects.create_user("mia", email="mia@example.com", password=OLD)
    kb = kb_get_or_create(name="Help Desk")
    kb.members.add(user)
    return user


def open_page(browser, size):
    return browser.new_page(viewport={"width": size[0], "height": size[1]})


def sideways_scroll(page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def assert_top_bar_is_one_line(page) -> None:
    bar = page.locator(".topbar").bounding_box()
    assert bar["height"] < 60, bar  # one line of links, however narrow the screen
    assert sideways_scroll(page) == 0


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("main button[type=submit]").click()
    page.wait_for_url(f"{url}/")


def sign_out(page) -> None:
    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.locator(".topbar").get_by_role("link", name="Sign in").wait_for()


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_a_member_changes_their_password_and_signs_in_with_it(live_server, browser, mia, size):
    """Before: there was no way for a member to change their own password."""
    page = open_page(browser, size)
    sign_in(page, live_server.url, "mia", OLD)
    assert_top_bar_is_one_line(page)
    page.locator(".account-menu summary").click()
    change = page.get_by_role("link", name="Change password")
    assert change.is_visible() and sideways_scroll(page) == 0
    change.click()
    page.wait_for_url("**/accounts/password/change/")
    assert_top_bar_is_one_line(page)
    assert serious_violations(page) == []
    page.fill("#id_old_password", OLD)
    page.fill("#id_new_password1", "12345678")
    page.fill("#id_new_password2", "12345678")
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_text("This password is too common.").is_visible()
    assert sideways_scroll(page) == 0
    page.fill("#id_old_password", OLD)
    page.fill("#id_new_password1", NEW)
    page.fill("#id_new_password2", NEW)
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("heading", name="Password changed").wait_for()
    sign_out(page)
    sign_in(page, live_server.url, "mia", NEW)
    assert page.locator(".account-name").inner_text() == "mia"
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_a_forgotten_password_is_reset_by_email(live_server, browser, mia, size):
    page = open_page(browser, size)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url("**/accounts/password/reset/")
    assert sideways_scroll(page) == 0
    page.fill("#id_email", "mia@example.com")
    page.get_by_role("button", name="Send the link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["mia@example.com"]
    link = re.search(r"http://\S+/accounts/password/reset/\S+/", mail.outbox[0].body)
    assert link and link[0].startswith(live_server.url), mail.outbox[0].body
    page.goto(link[0])
    page.get_by_role("heading", name="Choose a new password").wait_for()
    assert sideways_scroll(page) == 0
    page.fill("#id_new_password1", NEW)
    page.fill("#id_new_password2", NEW)
    page.get_by_role("button", name="Set password").click()
    page.get_by_role("heading", name="Your password is set").wait_for()
    page.locator("main").get_by_role("link", name="Sign in").click()
    page.fill("#id_username", "mia")
    page.fill("#id_password", NEW)
    page.locator("main button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".account-name").inner_text() == "mia"
    page.close()


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_an_unknown_page_is_a_docent_page_with_a_way_back(live_server, browser, mia, size):
    page = open_page(browser, size)
    sign_in(page, live_server.url, "mia", OLD)
    response = page.goto(f"{live_server.url}/?kb=no-such-kb")
    assert response.status == 404
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert_top_bar_is_one_line(page)
    assert serious_violations(page) == []
    back = page.get_by_role("link", name="Back to chat")
    box = back.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= size[0]
    back.click()
    page.wait_for_url(f"{live_server.url}/")
    page.close()


@pytest.fixture
def team(transactional_db):
    User = get_user_model()
    people = {
        name: User.objects.create_user(name, password=f"pw-{name}-123")
        for name in ("alice", "bob", "carol", "dave", "erin", "frank")
    }
    kb = kb_get_or_create(name="Support Team")
    kb.members.set([people["bob"], people["dave"], people["erin"]])
    User.objects.create_user("boss", password="pw-boss-123", is_staff=True)
    return kb, people


def members_of(kb) -> set[str]:
    return set(KnowledgeBase.objects.get(pk=kb.pk).members.values_list("username", flat=True))


def ticked(page) -> list[str]:
    return page.locator(".member-picker input:checked").evaluate_all(
        "boxes => boxes.map(box => box.parentElement.textContent.trim())"
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_clicking_one_person_in_the_members_picker_keeps_the_others(
    live_server, browser, team, size
):
    """Before: a <select multiple>, where one click on a name dropped every other member."""
    kb, _ = team
    page = open_page(browser, size)
    sign_in(page, live_server.url, "boss", "pw-boss-123")
    page.goto(f"{live_server.url}/kb/{kb.slug}/settings/")
    assert_top_bar_is_one_line(page)
    assert ticked(page) == ["bob", "dave", "erin"]  # current members first, ticked
    assert serious_violations(page) == []
    picker = page.locator(".member-picker")
    picker.get_by_text("alice", exact=True).click()  # add one
    assert ticked(page) == ["bob", "dave", "erin", "alice"]
    picker.get_by_text("dave", exact=True).click()  # take one off
    assert ticked(page) == ["bob", "erin", "alice"]
    assert picker.locator("[data-member-count]").inner_text() == "3 members"
    search = page.get_by_label("Add a member")
    search.fill("car")
    others = picker.locator("[data-member-others] li:visible")
    assert others.evaluate_all("items => items.map(i => i.textContent.trim())") == [
        "alice",  # ticked: stays in view
        "carol",
    ]
    search.press("Enter")  # filtering, not saving
    assert page.url.endswith(f"/kb/{kb.slug}/settings/") and members_of(kb) == {
        "bob",
        "dave",
        "erin",
    }
    picker.get_by_text("carol", exact=True).click()
    assert sideways_scroll(page) == 0
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    assert members_of(kb) == {"bob", "erin", "alice", "carol"}
    assert ticked(page) == ["alice", "bob", "carol", "erin"]
    assert sideways_scroll(page) == 0
    page.close()

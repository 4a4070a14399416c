"""Members' own passwords: change, reset by email (rate limited), and the validators' words."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def ada():
    return get_user_model().objects.create_user("ada", email="ada@example.com", password=PASSWORD)


def ask_reset(email: str, ip: str = "192.0.2.10"):
    return Client(REMOTE_ADDR=ip).post("/accounts/password/reset/", {"email": email})


def test_a_reset_link_arrives_and_sets_a_new_password(ada):
    response = ask_reset("ADA@example.com")
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    assert mail.outbox[0].subject == "Reset your Docent password"
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    client = Client()
    form = client.get(link[1], follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new phrase 42", "new_password2": "a brand new phrase 42"},
    )
    assert done["Location"] == "/accounts/password/reset/done/"
    assert Client().login(username="ada", password="a brand new phrase 42")
    used = Client().get(link[1], follow=True)  # a link works once
    assert b"This link no longer works" in used.content


def test_after_a_reset_the_owner_signs_in_from_a_new_device_despite_guessing(ada, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    for n in range(3):
        Client(REMOTE_ADDR="198.51.100.66").post(
            "/accounts/login/", {"username": "ada", "password": f"guess-{n}"}
        )
    laptop = Client(REMOTE_ADDR="203.0.113.5")
    refused = laptop.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert "Too many failed sign-ins" in refused.content.decode()
    ask_reset("ada@example.com", ip="203.0.113.5")
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    form = laptop.get(link[1], follow=True)
    new = "a brand new phrase 42"
    laptop.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    signed_in = laptop.post("/accounts/login/", {"username": "ada", "password": new})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    guesser = Client(REMOTE_ADDR="198.51.100.66")  # the guessing address still waits
    assert guesser.post("/accounts/login/", {"username": "ada", "password": new}).status_code == 200


def test_reset_requests_per_address_are_limited(ada, settings):
    """Before: the form sent as many emails as anyone asked for, to anyone's mailbox."""
    settings.PASSWORD_RESET_PER_ADDRESS = 3
    sent = [ask_reset("ada@example.com", ip=f"198.51.100.{n}") for n in range(3)]
    assert all(r.status_code == 302 for r in sent) and len(mail.outbox) == 3
    refused = ask_reset("Ada@Example.com", ip="198.51.100.9")  # another address, same mailbox
    assert refused.status_code == 200 and len(mail.outbox) == 3
    assert "Too many password reset requests" in refused.content.decode()
    assert "try again in" in refused.content.decode()


def test_reset_requests_per_ip_are_limited_and_unknown_addresses_count_too(ada, settings):
    settings.PASSWORD_RESET_PER_IP = 4
    for n in range(4):  # nobody has these: the same answer, no email, but they count
        assert ask_reset(f"nobody{n}@example.com").status_code == 302
    assert mail.outbox == []
    refused = ask_reset("ada@example.com")
    assert refused.status_code == 200 and mail.outbox == []
    assert ask_reset("ada@example.com", ip="203.0.113.5").status_code == 302  # elsewhere: fine
    assert len(mail.outbox) == 1


def test_the_change_form_shows_what_the_validators_say(ada):
    client = Client()
    client.force_login(ada)
    page = client.get("/accounts/password/change/").content.decode()
    assert "at least 8 characters" in page  # the validators' help, before any attempt
    weak = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    ).content.decode()
    assert "This password is too common." in weak and "entirely numeric" in weak
    done = client.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "lantern river 77",
            "new_password2": "lantern river 77",
        },
    )
    assert done["Location"] == "/accounts/password/change/done/"
    assert client.get("/").status_code == 200  # still signed in here
    assert Client().login(username="ada", password="lantern river 77")


def test_guessing_the_old_password_in_an_open_session_is_throttled(ada, settings):
    """A session left open must not let anyone try old passwords without end."""
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    client = Client(REMOTE_ADDR="198.51.100.66")
    client.force_login(ada)
    change = {"new_password1": "lantern river 77", "new_password2": "lantern river 77"}
    for n in range(3):
        wrong = client.post("/accounts/password/change/", {**change, "old_password": f"guess-{n}"})
        assert "Your old password was entered incorrectly" in wrong.content.decode()
    right = client.post("/accounts/password/change/", {**change, "old_password": PASSWORD})
    assert right.status_code == 200 and "Too many failed sign-ins" in right.content.decode()
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)


def test_signed_out_visitors_are_sent_to_sign_in_from_the_change_form():
    response = Client().get("/accounts/password/change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_sign_in_page_links_to_the_reset_and_the_menu_to_the_change_form(ada):
    assert 'href="/accounts/password/reset/"' in Client().get("/accounts/login/").content.decode()
    client = Client()
    client.force_login(ada)
    assert 'href="/accounts/password/change/"' in client.get("/").content.decode()

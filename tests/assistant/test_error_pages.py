"""With DEBUG off, errors are Docent pages with a way back, not Django's bare text."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.views.defaults import server_error

from ingest.models import KnowledgeBase

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("debug_off")]


@pytest.fixture
def debug_off():
    with override_settings(DEBUG=False):
        yield


def member_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("mia", password="pw-mia-12345"))
    return client


def assert_docent_page(html: str, heading: str) -> None:
    assert '<header class="topbar">' in html and 'class="brand"' in html
    assert "/static/docent/app.css" in html
    assert f"<h1>{heading}</h1>" in html
    assert '<a class="button" href="/">Back to chat</a>' in html


def test_an_unknown_knowledge_base_is_the_styled_404():
    KnowledgeBase.objects.create(name="Real", slug="real")
    response = member_client().get("/?kb=no-such-kb")
    assert response.status_code == 404
    assert_docent_page(response.content.decode(), "Page not found")


def test_an_unknown_address_is_the_styled_404_with_a_way_to_sign_in():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert_docent_page(html, "Page not found")
    assert 'href="/accounts/login/?next=/no-such-page/"' in html


def test_a_refused_form_is_the_styled_403():
    """A sign-in with no CSRF token (an old tab, blocked cookies)."""
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "mia", "password": "x"}
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert_docent_page(html, "This form has expired")
    assert "reload the page" in html


def test_a_page_the_account_may_not_open_is_the_styled_403():
    staff = get_user_model().objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    client = Client()
    client.force_login(staff)  # staff without model permissions
    response = client.get("/admin/ingest/document/")
    assert response.status_code == 403
    assert_docent_page(response.content.decode(), "You can’t open this page")


def test_the_500_page_needs_no_request_context():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html and 'href="/"' in html
    assert "/static/docent/app.css" in html

"""The members picker on the knowledge base forms keeps exactly the people ticked."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ingest.forms import KnowledgeBaseForm
from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    User = get_user_model()
    return {name: User.objects.create_user(name, password=f"pw-{name}-123") for name in
            ("alice", "bob", "carol", "dave", "erin")}  # fmt: skip


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(
        get_user_model().objects.create_user("boss", password="pw-boss-123", is_staff=True)
    )
    return client


@pytest.fixture
def kb(people):
    kb = kb_get_or_create(name="Help Desk")
    kb.members.set([people["bob"], people["dave"], people["erin"]])
    return kb


def settings_post(kb, members) -> dict:
    return {"name": kb.name, "visibility": "members", "members": [m.pk for m in members]}


def ticked(html: str) -> list[str]:
    return re.findall(
        r'<input type="checkbox" name="members" value="\d+"[^>]*checked>\s*(\w+)', html
    )


def test_the_settings_page_lists_current_members_first_and_ticked(staff_client, kb):
    html = staff_client.get(f"/kb/{kb.slug}/settings/").content.decode()
    names = re.findall(r'name="members" value="\d+"[^>]*>\s*(\w+)</label>', html)
    assert names[:3] == ["bob", "dave", "erin"] and set(names[3:]) == {"alice", "boss", "carol"}
    assert ticked(html) == ["bob", "dave", "erin"]
    assert "3 members" in html and "Add a member" in html
    assert "<select" not in html.split('id="id_members"')[1].split("</fieldset>")[0]


def test_saving_keeps_exactly_the_ticked_members(staff_client, kb, people):
    """Before: a <select multiple>, where one plain click left only that one person."""
    keep = [people["bob"], people["dave"], people["erin"], people["alice"]]  # one added
    response = staff_client.post(f"/kb/{kb.slug}/settings/", settings_post(kb, keep))
    assert response.status_code == 302
    assert set(KnowledgeBase.objects.get(pk=kb.pk).members.all()) == set(keep)
    keep = [people["bob"], people["erin"], people["alice"]]  # one taken off
    staff_client.post(f"/kb/{kb.slug}/settings/", settings_post(kb, keep))
    assert set(KnowledgeBase.objects.get(pk=kb.pk).members.all()) == set(keep)
    html = staff_client.get(f"/kb/{kb.slug}/settings/").content.decode()
    assert ticked(html) == ["alice", "bob", "erin"]


def test_the_form_keeps_members_it_is_not_asked_to_change(kb, people):
    form = KnowledgeBaseForm.for_kb(kb, data=settings_post(kb, kb.members.all()))
    assert form.is_valid(), form.errors
    assert set(form.cleaned_data["members"]) == {people["bob"], people["dave"], people["erin"]}


def test_the_create_form_has_the_same_picker(staff_client, people):
    html = staff_client.get("/kbs/").content.decode()
    assert "data-member-picker" in html and "No members yet" in html and ticked(html) == []
    response = staff_client.post(
        "/kbs/",
        {
            "name": "Team",
            "visibility": "members",
            "members": [people["carol"].pk, people["alice"].pk],
        },
    )
    assert response.status_code == 302
    team = KnowledgeBase.objects.get(name="Team")
    assert set(team.members.all()) == {people["carol"], people["alice"]}

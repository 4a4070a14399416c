"""The chat page's history: rename, delete (with screenshots), search and date labels,
through the page's JSON endpoints and the REST API."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from assistant.conversations import (
    conversation_delete,
    conversation_period,
    conversation_rename,
    conversation_when,
    conversations_search,
)
from assistant.keys import api_key_create
from assistant.models import Conversation, Feedback, Message
from assistant.screenshots import ChatInputError
from ingest.services import kb_get_or_create, kb_update
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def kb():
    return kb_update(kb=kb_get_or_create(name="Routers"), visibility="public")


@pytest.fixture
def people():
    User = get_user_model()
    return User.objects.create_user("ann", password="pw-ann"), User.objects.create_user("bob")


@pytest.fixture
def ann(people) -> Client:
    client = Client()
    client.force_login(people[0])
    return client


def conversation(kb, user, title: str, *texts: str) -> Conversation:
    made = Conversation.objects.create(kb=kb, user=user, owner_key=f"user:{user.pk}", title=title)
    for n, text in enumerate(texts):
        Message.objects.create(
            conversation=made, role="user" if n % 2 == 0 else "assistant", content=text
        )
    return made


def with_screenshot(made: Conversation) -> tuple[Message, str]:
    """A question carrying a screenshot, stored where the question path stores it."""
    message = Message.objects.create(conversation=made, role="user", content="see this")
    path = default_storage.save(
        f"conversations/{made.uid}/{message.pk}-1.png", ContentFile(factories.text_image(["E7"]))
    )
    Message.objects.filter(pk=message.pk).update(images=[path])
    return message, path


# -- services ---------------------------------------------------------------------------------


def test_rename_trims_and_keeps_the_place_in_the_history(kb, people):
    made = conversation(kb, people[0], "Old title")
    before = Conversation.objects.get(pk=made.pk).updated_at
    conversation_rename(conversation=made, title="  Router\n  reset  ")
    stored = Conversation.objects.get(pk=made.pk)
    assert stored.title == "Router reset" == made.title
    assert stored.updated_at == before  # renaming is not activity: it stays where it was


@pytest.mark.parametrize("title", ["", "   \n\t", "x" * 201])
def test_rename_refuses_an_empty_or_overlong_title(kb, people, title):
    made = conversation(kb, people[0], "Kept")
    with pytest.raises(ChatInputError) as caught:
        conversation_rename(conversation=made, title=title)
    assert caught.value.status == 400
    assert Conversation.objects.get(pk=made.pk).title == "Kept"


def test_rename_takes_exactly_200_characters(kb, people):
    made = conversation(kb, people[0], "Old")
    conversation_rename(conversation=made, title="y" * 200)
    assert Conversation.objects.get(pk=made.pk).title == "y" * 200


def test_delete_removes_messages_feedback_and_stored_screenshots(
    kb, people, django_capture_on_commit_callbacks
):
    made = conversation(kb, people[0], "With a screenshot", "q", "a")
    _, path = with_screenshot(made)
    stray = default_storage.save(f"conversations/{made.uid}/unrecorded.png", ContentFile(b"x"))
    keep = conversation(kb, people[0], "Another")
    _, other_path = with_screenshot(keep)
    answer = made.messages.get(role="assistant")
    Feedback.objects.create(message=answer, rating=1, owner_key=f"user:{people[0].pk}")
    assert default_storage.exists(path) and default_storage.exists(stray)

    with django_capture_on_commit_callbacks(execute=True):
        conversation_delete(conversation=made)

    assert not Conversation.objects.filter(pk=made.pk).exists()
    assert not Message.objects.filter(conversation_id=made.pk).exists()
    assert not Feedback.objects.filter(message_id=answer.pk).exists()
    assert not default_storage.exists(path) and not default_storage.exists(stray)
    assert not default_storage.exists(f"conversations/{made.uid}")  # no empty folder left
    assert default_storage.exists(other_path)  # another conversation's files stay


def test_delete_leaves_files_outside_the_conversation_folder(
    kb, people, django_capture_on_commit_callbacks
):
    """A path edited into Message.images (the admin shows that field) is never deleted."""
    made = conversation(kb, people[0], "Tampered")
    elsewhere = default_storage.save("kb/elsewhere.png", ContentFile(b"keep me"))
    Message.objects.create(conversation=made, role="user", content="q", images=[elsewhere])
    with django_capture_on_commit_callbacks(execute=True):
        conversation_delete(conversation=made)
    assert default_storage.exists(elsewhere)
    default_storage.delete(elsewhere)


def test_search_matches_title_and_message_text_every_word(kb, people):
    ann = people[0]
    reset = conversation(kb, ann, "Factory reset", "How do I reset it?", "Hold the PIN.")
    wifi = conversation(kb, ann, "Network", "The Wi-Fi password?", "It is on the label.")
    mine = Conversation.objects.filter(user=ann)

    def found(query):
        return set(conversations_search(conversations=mine, query=query))

    assert found("factory") == {reset}
    assert found("LABEL") == {wifi}  # in an answer, any case
    assert found("reset pin") == {reset}  # every word, anywhere in the conversation
    assert found("reset label") == set()
    assert found("  ") == {reset, wifi}


def test_periods_and_short_dates_by_calendar_day():
    now = datetime(2025, 6, 11, 9, 30, tzinfo=UTC)  # a Wednesday

    def label(**ago):
        when = now - timedelta(**ago)
        return conversation_period(when=when, now=now), conversation_when(when=when, now=now)

    assert label(minutes=5) == ("Today", "09:25")
    assert label(hours=10) == ("Yesterday", "23:30")
    assert label(days=2) == ("Previous 7 days", "Mon")
    assert label(days=6) == ("Previous 7 days", "Thu")
    assert label(days=7) == ("Older", "4 Jun")
    assert label(days=400) == ("Older", "7 May 2024")


# -- page endpoints ---------------------------------------------------------------------------


def test_page_rename_and_delete_own_conversation(
    ann, kb, people, django_capture_on_commit_callbacks
):
    made = conversation(kb, people[0], "Old title", "q", "a")
    _, path = with_screenshot(made)
    base = f"/kb/{kb.slug}/conversations/{made.uid}"

    renamed = ann.post(f"{base}/rename", {"title": " New title "})
    assert renamed.status_code == 200
    assert renamed.json() == {"id": str(made.uid), "title": "New title"}
    assert ann.post(f"{base}/rename", {"title": "  "}).status_code == 400
    assert ann.post(f"{base}/rename", {"title": "z" * 201}).status_code == 400
    assert Conversation.objects.get(pk=made.pk).title == "New title"

    with django_capture_on_commit_callbacks(execute=True):
        deleted = ann.post(f"{base}/delete")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": str(made.uid)}
    assert not Conversation.objects.filter(pk=made.pk).exists()
    assert not default_storage.exists(path)
    assert ann.post(f"{base}/delete").status_code == 404  # gone


def test_page_someone_elses_conversation_is_404_and_untouched(ann, kb, people):
    bobs = conversation(kb, people[1], "Bob's", "secret question")
    base = f"/kb/{kb.slug}/conversations/{bobs.uid}"
    assert ann.post(f"{base}/rename", {"title": "Mine now"}).status_code == 404
    assert ann.post(f"{base}/delete").status_code == 404
    assert Client().post(f"{base}/delete").status_code == 404  # anonymous: owns nothing
    assert Conversation.objects.get(pk=bobs.pk).title == "Bob's"
    assert ann.post(f"/kb/{kb.slug}/conversations/not-a-uuid/delete").status_code == 404
    assert ann.get(f"{base}/delete").status_code == 405  # only POST


def test_page_endpoints_need_the_csrf_token(kb, people):
    made = conversation(kb, people[0], "Guarded")
    client = Client(enforce_csrf_checks=True)
    client.force_login(people[0])
    base = f"/kb/{kb.slug}/conversations/{made.uid}"
    assert client.post(f"{base}/rename", {"title": "x"}).status_code == 403
    assert client.post(f"{base}/delete").status_code == 403
    client.get(f"/?kb={kb.slug}")
    token = client.cookies["csrftoken"].value
    assert client.post(f"{base}/rename", {"title": "x"}, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_page_list_searches_and_labels_dates(ann, kb, people):
    old = conversation(kb, people[0], "Printer jam", "The tray is stuck")
    Conversation.objects.filter(pk=old.pk).update(updated_at=old.updated_at - timedelta(days=30))
    new = conversation(kb, people[0], "Router reset", "Hold the pin")
    conversation(kb, people[1], "Bob's router", "router")

    listed = ann.get(f"/kb/{kb.slug}/conversations").json()
    assert [c["id"] for c in listed["conversations"]] == [str(new.uid), str(old.uid)]
    assert [c["period"] for c in listed["conversations"]] == ["Today", "Older"]
    assert listed["now"]["period"] == "Today"
    found = ann.get(f"/kb/{kb.slug}/conversations", {"q": "tray"}).json()["conversations"]
    assert [c["title"] for c in found] == ["Printer jam"]
    found = ann.get(f"/kb/{kb.slug}/conversations", {"q": "router"}).json()["conversations"]
    assert [c["title"] for c in found] == ["Router reset"]  # not Bob's
    assert ann.get(f"/kb/{kb.slug}/conversations", {"q": "nothing"}).json()["conversations"] == []


def test_chat_page_groups_the_history_and_marks_the_open_one(ann, kb, people):
    old = conversation(kb, people[0], "Printer jam")
    Conversation.objects.filter(pk=old.pk).update(updated_at=old.updated_at - timedelta(days=30))
    new = conversation(kb, people[0], "Router <reset>")
    html = ann.get(f"/?kb={kb.slug}&c={new.uid}").content.decode()
    assert html.index('<h3 class="history-period">Today</h3>') < html.index("Router &lt;reset&gt;")
    assert (
        html.index("Router &lt;reset&gt;") < html.index(">Older</h3>") < html.index("Printer jam")
    )
    assert 'title="Router &lt;reset&gt;" aria-current="page"' in html
    assert 'aria-label="Rename Router &lt;reset&gt;"' in html
    assert 'aria-label="Delete Printer jam"' in html
    assert '<time datetime="' in html
    assert "docent/history.js" in html and "docent/history.css" in html


# -- REST API ---------------------------------------------------------------------------------


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_api_rename_and_delete_with_a_key(kb, people, django_capture_on_commit_callbacks):
    key, token = api_key_create(name="script", knowledge_bases=[kb])
    _, other = api_key_create(name="other", knowledge_bases=[kb])
    client = Client()
    made = Conversation.objects.create(kb=kb, owner_key=f"key:{key.pk}", title="Scripted")
    _, path = with_screenshot(made)
    url = f"/api/conversations/{made.uid}"

    def patch(title, auth):
        return client.patch(
            url, json.dumps({"title": title}), content_type="application/json", **bearer(auth)
        )

    assert patch("Renamed", other).status_code == 404  # not that key's
    assert client.delete(url, **bearer(other)).status_code == 404
    renamed = patch("  Renamed  ", token)
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    assert patch(" ", token).status_code == 400
    assert (
        client.patch(url, "{}", content_type="application/json", **bearer(token)).status_code == 422
    )
    assert client.patch(url, **bearer("dk_nope_bad")).status_code == 401
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(url, **bearer(token)).status_code == 204
    assert not Conversation.objects.filter(pk=made.pk).exists()
    assert not default_storage.exists(path)
    assert client.delete(url, **bearer(token)).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_api_delete_removes_the_screenshots_a_question_stored(ingest_text, llm_server):
    """End to end: a question with a screenshot through the API, then DELETE."""
    kb = kb_get_or_create(name="Alpha")
    ingest_text(kb, "guide.md", "# Guide\n\nHold the power button for ten seconds to reset.")
    _, token = api_key_create(name="reader", knowledge_bases=[kb])
    client = Client()
    shot = base64.b64encode(factories.text_image(["Widget error 7"])).decode()
    asked = client.post(
        f"/api/kbs/{kb.slug}/chat",
        json.dumps({"question": "What is this error?", "images": [shot]}),
        content_type="application/json",
        **bearer(token),
    )
    assert asked.status_code == 200, asked.content
    uid = asked.json()["conversation"]
    paths = [p for images in Message.objects.values_list("images", flat=True) for p in images]
    assert len(paths) == 1 and default_storage.exists(paths[0])
    assert client.delete(f"/api/conversations/{uid}", **bearer(token)).status_code == 204
    assert not default_storage.exists(paths[0])
    assert not Conversation.objects.filter(uid=uid).exists()

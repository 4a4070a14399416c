"""Who is asking: one owner key per kind of caller; each sees only their own conversations."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from assistant.askers import Asker
from assistant.models import Conversation

pytestmark = pytest.mark.django_db


def test_conversations_belong_to_their_asker_only(kb):
    user = get_user_model().objects.create_user("ada", password="pw-123456")
    signed_in = Asker(f"user:{user.pk}", user)
    visitor = Asker("session:abc")
    cli = Asker.for_cli()
    for asker in (signed_in, visitor, cli):
        Conversation.objects.create(
            kb=kb, owner_key=asker.owner_key, user=asker.user, title=asker.owner_key
        )
    assert [c.title for c in signed_in.conversations(kb=kb)] == [f"user:{user.pk}"]
    assert [c.title for c in visitor.conversations(kb=kb)] == ["session:abc"]
    assert [c.title for c in cli.conversations(kb=kb)] == ["cli"]
    assert not Asker("session:other").conversations(kb=kb).exists()


def test_widget_askers_carry_the_widgets_limits(kb):
    from assistant.models import Widget
    from assistant.widgets import WidgetSession

    widget = Widget.objects.create(name="w", kb=kb, max_message_chars=300, accept_screenshots=False)
    asker = Asker.for_widget(WidgetSession(widget, "https://shop.example", "v1"), ip="192.0.2.7")
    assert asker.owner_key == f"widget:{widget.pk}:v1"
    assert (asker.max_question_chars, asker.screenshots, asker.surface) == (300, False, "widget")
    assert asker.quota_scope == f"widget:{widget.pk}"
    assert [(q.key, q.limit) for q in asker.quota] == [("visitor:v1", 50), ("ip:192.0.2.7", 300)]


def test_looking_at_the_chat_page_starts_no_session(client, kb):
    """A cookie-less GET / writes no session row; asking a question does."""
    from django.contrib.sessions.models import Session

    KnowledgeBase = type(kb)
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility="public")
    for _ in range(3):
        client.cookies.clear()
        assert client.get("/").status_code == 200
    assert Session.objects.count() == 0

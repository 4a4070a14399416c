"""What the chat page says before the first question, and what it serves an answer's owner."""

from __future__ import annotations

import pytest
from django.test import Client

from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_kb(db):
    kb = kb_get_or_create(name="Routers")
    KnowledgeBase.objects.filter(pk=kb.pk).update(
        visibility=KnowledgeBase.Visibility.PUBLIC,
        starter_questions="What does the amber light mean?\n\n  How do I reset?  \n" + "x\n" * 9,
    )
    return kb


def test_without_a_model_the_page_says_retrieval_only_up_front(public_kb, settings):
    settings.LLM_BASE_URL = ""
    page = Client().get(f"/?kb={public_kb.slug}").content.decode()
    assert "Retrieval only:" in page and "no language model is configured" in page


def test_with_a_model_the_page_names_it(public_kb, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_MODEL = "ministral-3b-2512"
    page = Client().get(f"/?kb={public_kb.slug}").content.decode()
    assert "Answers written by <strong>ministral-3b-2512</strong>" in page


def test_an_empty_chat_offers_the_knowledge_bases_starter_questions(public_kb):
    page = Client().get(f"/?kb={public_kb.slug}").content.decode()
    assert page.count('class="starter"') == 4  # at most four, blank lines dropped
    assert '<button type="button" class="starter">How do I reset?</button>' in page


def test_someone_elses_answer_and_screenshots_are_not_served(public_kb):
    from assistant.models import Conversation, Message

    conversation = Conversation.objects.create(kb=public_kb, owner_key="s:someone", title="x")
    question = Message.objects.create(
        conversation=conversation, role="user", content="x", images=["conversations/x/1-1.png"]
    )
    answer = Message.objects.create(conversation=conversation, role="assistant", content="y")
    client = Client()
    assert client.get(f"/messages/{answer.pk}").status_code == 404
    assert client.get(f"/messages/{question.pk}/images/1").status_code == 404


def test_a_malformed_conversation_id_is_not_found_not_an_error(public_kb):
    assert Client().get(f"/?kb={public_kb.slug}&c=not-a-uuid").status_code == 404

"""answer_stream against the stand-in Ministral server: every request is checked by mistral-common."""

from __future__ import annotations

import time

import pytest

from assistant.askers import Asker
from assistant.followups import question_stands_alone
from assistant.models import Conversation, Message
from assistant.screenshots import AttachedBytes, screenshot_prepare
from assistant.services import PARTIAL_SAVE_SECONDS, ChatInputError, answer_stream
from standin import Reply
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

MANUAL = """# Printer manual

## Paper jams

When the display shows error E-42 the paper tray is jammed. Open cover B, remove the
crumpled sheet and press the green reset button for five seconds.

## Network

The printer joins Wi-Fi from Settings > Network. It needs port 9100 open on the firewall.
"""


def ask(kb, question: str, **kwargs) -> tuple[list, Message]:
    events = list(answer_stream(kb=kb, asker=Asker.for_cli(), question=question, **kwargs))
    done = events[-1]
    assert done.kind == "done"
    return events, Message.objects.get(pk=done.data["message_id"])


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def text_of(events) -> str:
    return "".join(e.data["text"] for e in events if e.kind == "delta")


def sources_of(events) -> list[dict]:
    return next(e.data for e in events if e.kind == "sources")["sources"]


def user_text(request) -> str:
    content = request.body["messages"][-1]["content"]
    return "\n".join(p.get("text", "") for p in content) if isinstance(content, list) else content


def test_text_question_streams_a_cited_answer_with_exact_token_count(kb, ingest_text, llm_server):
    document = ingest_text(kb, "printer.md", MANUAL)
    events, reply = ask(kb, "What does error E-42 mean?")
    assert kinds(events)[:3] == ["conversation", "status", "status"] or "sources" in kinds(events)
    sources = sources_of(events)
    assert sources[0]["document_id"] == document.pk and sources[0]["number"] == 1
    assert "E-42" in sources[0]["excerpt"]
    answer = text_of(events)
    assert "[1]" in answer and sum(e.kind == "delta" for e in events) > 1  # streamed, cited
    (request,) = llm_server.chat_requests
    packed_tokens = next(e.data for e in events if e.kind == "sources")["prompt_tokens"]
    assert request.prompt_tokens == packed_tokens  # mistral-common agrees with the packer
    body = request.body
    assert body["stream"] is True and body["max_tokens"] > 0 and body["temperature"] <= 0.2
    assert '<source id="1" document="printer.md"' in user_text(request)
    assert "not instructions" in body["messages"][0]["content"]
    assert reply.status == "complete" and reply.content == answer
    assert reply.prompt_tokens == request.prompt_tokens and reply.completion_tokens > 0
    # stored without a link: each surface links sources its own way
    assert "url" not in reply.sources[0] and reply.sources[0]["document_id"] == document.pk


def test_no_sources_means_the_model_is_told_and_says_so(kb, llm_server):
    events, reply = ask(kb, "What is the capital of Peru?")
    assert sources_of(events) == []
    assert "returned no passages" in user_text(llm_server.chat_requests[0])
    assert "cannot find" in reply.content.lower()


def test_pasted_screenshot_is_sent_as_an_image_and_its_text_joins_the_query(
    kb, ingest_text, llm_server
):
    ingest_text(kb, "printer.md", MANUAL)
    ingest_text(kb, "other.md", "# Billing\n\nInvoices are emailed on the first of the month.")
    shot = factories.text_image(["PRINTER STATUS", "Error E-42"])
    events, reply = ask(kb, "What should I do about this?", images=[AttachedBytes(shot)])
    assert "E-42" in reply.retrieval_query  # OCR text joined the retrieval query
    assert sources_of(events)[0]["document"] == "printer.md"
    (request,) = llm_server.chat_requests
    parts = request.body["messages"][-1]["content"]
    assert [p["type"] for p in parts][-1] == "image_url" and parts[0][
        "type"
    ] == "text"  # text first
    assert parts[-1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert request.n_images == 1
    stored = Message.objects.get(conversation=reply.conversation, role="user")
    assert stored.images and "E-42" in stored.image_text


def test_retrieved_screenshot_assets_are_sent_to_a_vision_model(kb, ingest_text, llm_server):
    ingest_text(
        kb, "dialog.png", factories.text_image(["Backup failed: disk quota exceeded (code Q-17)"])
    )
    events, _ = ask(kb, "Why did the backup fail with code Q-17?")
    (request,) = llm_server.chat_requests
    assert request.n_images == 1
    assert 'image="1"' in user_text(request)
    assert sources_of(events)[0]["image"] is True


def test_text_only_model_gets_ocr_text_instead_of_pixels(kb, ingest_text, llm_server, settings):
    settings.LLM_MODEL = "ministral-8b-2410"
    ingest_text(
        kb, "dialog.png", factories.text_image(["Backup failed: disk quota exceeded (code Q-17)"])
    )
    shot = factories.text_image(["Sync stopped: token expired"])
    _events, reply = ask(kb, "What is wrong?", images=[AttachedBytes(shot)])
    assert reply.status == "complete"
    (request,) = llm_server.chat_requests
    assert request.n_images == 0 and request.model == "ministral-8b-2410"
    assert "token expired" in user_text(request).lower()


def test_follow_up_is_rewritten_before_retrieval_and_history_is_sent(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    _, first = ask(kb, "How do I clear error E-42?")
    llm_server.reset()
    llm_server.script(Reply(text="Which port must be open on the firewall for the printer?"))
    events, second = ask(
        kb, "and which port does it need?", conversation_uid=str(first.conversation.uid)
    )
    rewrite, answer = llm_server.chat_requests
    assert "Final message: and which port does it need?" in rewrite.body["messages"][-1]["content"]
    assert second.retrieval_query.startswith("Which port must be open")
    assert "9100" in sources_of(events)[0]["excerpt"]
    roles = [m["role"] for m in answer.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the earlier turn went along
    assert (
        answer.prompt_tokens == next(e.data for e in events if e.kind == "sources")["prompt_tokens"]
    )


def test_a_follow_up_that_stands_alone_is_not_rewritten(kb, ingest_text, llm_server):
    """No model call (seconds with a real model) for a question that needs no context."""
    ingest_text(kb, "printer.md", MANUAL)
    _, first = ask(kb, "How do I clear error E-42?")
    llm_server.reset()
    question = "Which port must be open on the firewall for the printer?"
    events, second = ask(kb, question, conversation_uid=str(first.conversation.uid))
    (answer,) = llm_server.chat_requests  # the answer only: no rewrite request
    assert second.retrieval_query == question
    assert "9100" in sources_of(events)[0]["excerpt"]
    assert [m["role"] for m in answer.body["messages"]] == ["system", "user", "assistant", "user"]


@pytest.mark.parametrize(
    ("question", "alone"),
    [
        ("How do I connect the printer to Wi-Fi?", True),
        ("What does error E-42 mean on the display?", True),
        ("and which port does it need?", False),
        ("What about the blue one?", False),
        ("Can I do that from my phone?", False),
        ("Why?", False),
        ("Comment configurer le Wi-Fi de l'imprimante ?", False),  # unsure: rewritten
    ],
)
def test_which_follow_ups_stand_alone(question, alone):
    assert question_stands_alone(question=question) is alone


def test_long_history_is_trimmed_to_fit_and_still_exact(kb, ingest_text, llm_server, settings):
    settings.LLM_MODEL = "unknown-small-model"  # unknown ids get a 32K window
    settings.REWRITE_FOLLOWUPS = False
    ingest_text(kb, "printer.md", MANUAL)
    conversation = Conversation.objects.create(kb=kb, owner_key="cli", title="long")
    for n in range(60):
        Message.objects.create(
            conversation=conversation, role="user", content=f"q{n} " + "lorem " * 400
        )
        Message.objects.create(
            conversation=conversation, role="assistant", content=f"a{n} " + "ipsum " * 400
        )
    _events, reply = ask(kb, "What does E-42 mean?", conversation_uid=str(conversation.uid))
    (request,) = llm_server.chat_requests
    assert reply.status == "complete"
    assert request.prompt_tokens + request.body["max_tokens"] <= 32_768
    sent = [m["content"] for m in request.body["messages"][1:-1]]
    assert sent and sent[-1].startswith("a59") and len(sent) < 120


def test_reasoning_model_trace_is_separate_kept_and_sent_back(
    kb, ingest_text, llm_server, settings
):
    settings.LLM_MODEL = "mistralai/Ministral-3-8B-Reasoning-2512"
    settings.REWRITE_FOLLOWUPS = False
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(
        Reply(
            text="Open cover B [1].",
            reasoning="Source 1 mentions cover B.",
            reasoning_field="reasoning",
        )
    )
    events, reply = ask(kb, "How do I clear E-42?")
    assert (
        "".join(e.data["text"] for e in events if e.kind == "reasoning")
        == "Source 1 mentions cover B."
    )
    assert reply.content == "Open cover B [1]." and reply.reasoning == "Source 1 mentions cover B."
    assert llm_server.chat_requests[0].body["temperature"] == 0.7
    ask(kb, "And then?", conversation_uid=str(reply.conversation.uid))
    assistant_turn = llm_server.chat_requests[1].body["messages"][2]
    assert assistant_turn["reasoning_content"] == "Source 1 mentions cover B."


def test_429_is_retried_honouring_retry_after(kb, llm_server):
    llm_server.script(Reply.error(429, retry_after=1))
    start = time.monotonic()
    _, reply = ask(kb, "anything?")
    assert reply.status == "complete"
    first, second = llm_server.chat_requests
    assert first.status == 429 and second.started - first.started >= 0.9
    assert time.monotonic() - start >= 1


def test_persistent_500_ends_with_a_clear_error(kb, llm_server):
    llm_server.script(Reply.error(500, times=5))
    events, reply = ask(kb, "anything?")
    error = next(e for e in events if e.kind == "error")
    assert "HTTP 500" in error.data["message"]
    assert reply.status == "error" and "HTTP 500" in reply.error
    assert len(llm_server.chat_requests) == 3  # one try and two retries


def test_timeout_ends_with_a_clear_error(kb, llm_server, settings):
    settings.LLM_TIMEOUT_SECONDS = 1
    settings.LLM_MAX_RETRIES = 0
    llm_server.script(Reply.hang(5))
    events, reply = ask(kb, "anything?")
    assert "took too long" in next(e for e in events if e.kind == "error").data["message"]
    assert reply.status == "error"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Reply.drop(after_tokens=3), "lost"),
        (
            Reply.error_event(code=502, message="upstream overloaded", after_tokens=3),
            "upstream overloaded",
        ),
        (Reply.malformed(after_tokens=3), "malformed"),
    ],
)
def test_mid_stream_failure_keeps_what_was_said(kb, ingest_text, llm_server, fault, message):
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(fault)
    events, reply = ask(kb, "What does E-42 mean?")
    error = next(e for e in events if e.kind == "error")
    assert message in error.data["message"].lower() or message in error.data["message"]
    assert error.data["partial"] is True
    assert reply.status == "error" and reply.content == text_of(events) != ""


def test_without_a_model_chat_answers_with_labelled_passages(kb, ingest_text, settings):
    settings.LLM_BASE_URL = ""
    ingest_text(kb, "printer.md", MANUAL)
    _events, reply = ask(kb, "What does error E-42 mean?")
    assert reply.retrieval_only and reply.status == "complete"
    assert reply.content.startswith("**Retrieval only:**")
    assert "E-42" in reply.content and "[1]" in reply.content


LOREM = "# Notes\n\n" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do. " * 30
AMBER = "# FAQ\n\n## Status lights\n\nThe amber light means the router is updating its firmware."


def test_retrieval_only_answers_leave_out_filler_far_below_the_best_match(
    kb, ingest_text, settings
):
    """Before: lorem-ipsum filler was listed beside (even above) the passage that answers."""
    settings.LLM_BASE_URL = ""
    ingest_text(kb, "faq.md", AMBER)
    ingest_text(kb, "filler.md", LOREM)
    ingest_text(kb, "printer.md", MANUAL)
    _events, reply = ask(kb, "What does the amber light mean?")
    scores = [(s["document"], s.get("score")) for s in reply.sources]
    assert "firmware" in reply.content, scores
    assert "Lorem ipsum" not in reply.content and "paper tray" not in reply.content, scores
    assert reply.matched is True  # counted as answered on the analytics page
    # Off-topic: said plainly, with the nearest documents by name and no passage at all.
    _events, reply = ask(kb, "Who won the football world cup in 1954?")
    assert reply.content.startswith(f"**No match:** nothing in {kb.name} answers this question.")
    assert "The nearest documents are *" in reply.content
    assert not [line for line in reply.content.splitlines() if line.startswith("> ")]
    assert reply.sources == []
    assert reply.matched is False  # counted as "no match" on the analytics page


def test_an_off_topic_question_sends_the_model_no_sources(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    events, _reply = ask(kb, "Who won the football world cup in 1954?")
    assert sources_of(events) == []
    assert "returned no passages" in user_text(llm_server.chat_requests[0])
    assert "<source id=" not in user_text(llm_server.chat_requests[0])
    # An error code the manual has verbatim is a match, however short the question.
    llm_server.reset()
    events, _reply = ask(kb, "E-42?")
    assert sources_of(events) and '<source id="1"' in user_text(llm_server.chat_requests[0])


def test_stopping_midway_saves_the_partial_answer_as_stopped(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(Reply(text="word " * 200, delay_per_token=0.01))
    events = answer_stream(kb=kb, asker=Asker.for_cli(), question="What does E-42 mean?")
    for event in events:
        if event.kind == "delta":
            break
    events.close()  # what a closed browser tab does to the stream
    reply = Message.objects.get(role="assistant")
    assert reply.status == "stopped" and reply.content.startswith("word")


def test_a_long_answer_is_on_record_while_it_streams(kb, ingest_text, llm_server):
    """A server that dies mid-answer leaves what was said: it is saved every few seconds."""
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(Reply(text="word " * 300, delay_per_token=0.02))
    events = answer_stream(kb=kb, asker=Asker.for_cli(), question="What does E-42 mean?")
    started = None
    for event in events:
        if event.kind == "delta":
            started = started or time.monotonic()
            if time.monotonic() - started > PARTIAL_SAVE_SECONDS + 1:
                break
    reply = Message.objects.get(role="assistant")
    events.close()
    assert reply.content.startswith("word word") and reply.status == "streaming"


def test_bad_input_is_refused_before_streaming(kb):
    with pytest.raises(ChatInputError, match="type a question or attach a screenshot"):
        answer_stream(kb=kb, asker=Asker.for_cli(), question="   ")
    with pytest.raises(ChatInputError, match="not an image"):
        screenshot_prepare(data=b"not an image")
    with pytest.raises(ChatInputError, match="decompression bomb"):
        screenshot_prepare(data=factories.bomb_png())


def test_usage_and_reported_cost_are_stored(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(Reply(text="Open cover B [1].", cost=0.00042, processing_comments=2))
    events, reply = ask(kb, "How do I clear E-42?")
    assert reply.content == "Open cover B [1]."  # OpenRouter's ': PROCESSING' comments are skipped
    assert str(reply.cost) == "0.000420"
    done = events[-1].data
    assert done["cost"] == 0.00042 and done["completion_tokens"] == reply.completion_tokens > 0


def test_the_question_path_with_small_fakes(kb):
    """The whole path with a hashing embedder, an in-memory store and a scripted model:
    fast, and it shows what answer_stream asks of each protocol."""
    import io

    from assistant.askers import Asker
    from assistant.tools import ChatTools
    from ingest.services import IngestTools, document_create, document_ingest
    from ministral.tokens import get_counter
    from tests.fakes import HashEmbedder, MemoryStore, ScriptedLLM

    embedder, store, llm = HashEmbedder(), MemoryStore(), ScriptedLLM()
    upload = document_create(
        kb=kb, filename="printer.md", content=io.BytesIO(MANUAL.encode()), enqueue=False
    )
    tools = IngestTools(embedder=embedder, store=store, count_llm_tokens=get_counter().text)
    assert (
        document_ingest(document_id=upload.document.pk, owner="t:1:1", tools=tools).status
        == "ready"
    )
    chat = ChatTools(embedder=embedder, store=store, counter=get_counter(), llm=llm)
    events = list(
        answer_stream(kb=kb, asker=Asker.for_cli(), question="What is error E-42?", tools=chat)
    )
    assert [e.kind for e in events][:1] == ["conversation"] and events[-1].data[
        "status"
    ] == "complete"
    assert text_of(events) == "E-42 means the tray is empty [1]."
    (request,) = llm.requests
    assert "E-42" in request[-1].plain_text() and "paper tray is jammed" in request[-1].plain_text()


def test_regenerate_replaces_the_last_answer_and_keeps_the_question(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(Reply(text="First try [1]."), Reply(text="Second try [1]."))
    _, first = ask(kb, "What does error E-42 mean?")
    question = first.conversation.messages.get(role="user")
    conversation = str(first.conversation.uid)
    _, second = ask(kb, "", conversation_uid=conversation, resend_from=question.pk)
    kept = list(first.conversation.messages.values_list("role", "content"))
    assert kept == [("user", "What does error E-42 mean?"), ("assistant", "Second try [1].")]
    assert second.pk != first.pk and not Message.objects.filter(pk=first.pk).exists()


def test_edit_and_resend_replaces_the_question_and_what_followed(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(
        Reply(text="A [1]."),
        Reply(text="Which port does the printer need?"),  # the follow-up's rewrite
        Reply(text="B [1]."),
        Reply(text="C [1]."),
    )
    _, first = ask(kb, "What does E-42 mean?")
    conversation = str(first.conversation.uid)
    ask(kb, "And the network port?", conversation_uid=conversation)
    question = first.conversation.messages.filter(role="user").first()
    ask(kb, "What does E-43 mean?", conversation_uid=conversation, resend_from=question.pk)
    kept = list(first.conversation.messages.values_list("content", flat=True))
    assert kept == ["What does E-43 mean?", "C [1]."]


def test_resending_a_question_of_another_conversation_is_refused(kb, ingest_text, llm_server):
    from assistant.screenshots import ConversationNotFound

    ingest_text(kb, "printer.md", MANUAL)
    _, first = ask(kb, "What does E-42 mean?")
    _, other = ask(kb, "Network port?")
    question = first.conversation.messages.get(role="user")
    with pytest.raises(ConversationNotFound):
        answer_stream(
            kb=kb,
            asker=Asker.for_cli(),
            question="x",
            conversation_uid=str(other.conversation.uid),
            resend_from=question.pk,
        )
    assert first.conversation.messages.count() == 2  # nothing was deleted


def test_a_screenshot_alone_is_a_question(kb, ingest_text, llm_server):
    ingest_text(kb, "printer.md", MANUAL)
    shot = factories.text_image(["PRINTER STATUS", "Error E-42"])
    events, reply = ask(kb, "", images=[AttachedBytes(shot)])
    assert reply.status == "complete" and reply.conversation.title == "Screenshot"
    (request,) = llm_server.chat_requests
    assert "screenshot" in user_text(request).lower() and request.n_images == 1
    assert sources_of(events)[0]["document"] == "printer.md"  # found from the OCR text

"""Every failure after the first event is an error event and a reply saved as an error.

Rate limits say how long, windows that are too small are learned, a stopped vector store
is named, and an answer that failed never comes back as if it were whole.
"""

from __future__ import annotations

import io
import time

import pytest

from assistant.askers import Asker
from assistant.models import Message
from assistant.services import answer_stream, chat_tools
from assistant.tools import ChatTools, llm_clients_forget
from ingest.store import ChromaStore
from standin import Reply
from tests.conftest import chroma_run, free_port

pytestmark = pytest.mark.django_db(transaction=True)

MANUAL = "# Printer manual\n\nError E-42 means the paper tray is empty. Refill the tray.\n"


@pytest.fixture(autouse=True)
def fresh_clients():
    llm_clients_forget()
    yield
    llm_clients_forget()


def ask(kb, question, tools=None, **kwargs):
    events = list(
        answer_stream(
            kb=kb, asker=Asker.for_cli(), question=question, tools=tools or chat_tools(kb), **kwargs
        )
    )
    assert events[-1].kind == "done"
    return events, Message.objects.get(pk=events[-1].data["message_id"])


def error_of(events) -> dict:
    (error,) = [e.data for e in events if e.kind == "error"]
    return error


def test_a_long_retry_after_is_an_error_at_once_not_a_silent_wait(kb, llm_server, settings):
    settings.LLM_RETRY_MAX_SECONDS = 30
    llm_server.script(Reply.error(429, retry_after=90))
    start = time.monotonic()
    events, reply = ask(kb, "What does E-42 mean?")
    # Not 90 s, nor 210 s: no wait at all (the bound leaves room for loading the models
    # on a busy machine, and is still well under the 90 s it was told).
    assert time.monotonic() - start < 60
    assert not [e for e in events if e.kind == "status" and e.data.get("stage") == "waiting"]
    error = error_of(events)
    assert error["code"] == "rate_limited" and error["retry_after"] == 90
    assert "wait 90 s" in error["message"]
    assert reply.status == "error" and "rate-limiting" in reply.error
    assert len(llm_server.chat_requests) == 1


def test_a_short_wait_is_announced_while_it_happens(kb, llm_server):
    llm_server.script(Reply.error(429, retry_after=1))
    events, reply = ask(kb, "What does E-42 mean?")
    waiting = [e.data for e in events if e.kind == "status" and e.data.get("stage") == "waiting"]
    assert waiting and waiting[0]["message"] == "The model is busy; retrying in 1 s."
    assert reply.status == "complete"


def test_max_tokens_larger_than_the_window_is_a_clear_error(kb, ingest_text, llm_server, settings):
    ingest_text(kb, "printer.md", MANUAL)
    settings.LLM_MAX_TOKENS = 300_000
    events, reply = ask(kb, "What does E-42 mean?")
    error = error_of(events)
    assert error["code"] == "packing" and "LLM_MAX_TOKENS" in error["message"]
    assert "262,144-token window" in error["message"]
    assert reply.status == "error" and reply.error == error["message"]
    assert not llm_server.chat_requests


def test_a_smaller_server_window_is_learned_and_the_question_repacked(
    kb, ingest_text, llm_server, settings
):
    """llama.cpp started with -c 4096 but publishing nothing: the 400 names its window."""
    llm_server.config.update(
        {"dialect": "llamacpp", "models": {"m.gguf": {"context_window": 4096}}}
    )
    settings.LLM_DISCOVER = False
    settings.LLM_MODEL = "ministral-3-8b-instruct-2512-q4_k_m"
    settings.RETRIEVAL_BUDGET_TOKENS = 20_000
    ingest_text(
        kb,
        "manual.md",
        "# Manual\n\n"
        + "\n\n".join(
            f"Section {n}: the E-42 tray sensor, refill and reset steps {n}. " * 40
            for n in range(60)
        ),
    )
    events, reply = ask(kb, "What does E-42 mean?")
    first, second = llm_server.chat_requests
    assert first.status == 400 and "exceeds the available context size (4096 tokens)" in first.error
    assert second.status == 200 and second.prompt_tokens < 4096
    statuses = [e.data.get("message", "") for e in events if e.kind == "status"]
    assert any("window is 4,096 tokens" in s for s in statuses)
    assert reply.status == "complete"


@pytest.fixture
def own_chroma(tmp_path):
    """A Chroma server of this test's own, which the test can stop."""
    port = free_port()
    proc = chroma_run(tmp_path / "chroma", port)
    store = ChromaStore(url=f"http://127.0.0.1:{port}")
    yield store, proc
    proc.kill()
    proc.wait(10)


def test_chroma_stopped_mid_question_is_named_and_saved(kb, embedder, llm_server, own_chroma):
    from ingest.services import IngestTools, document_create, document_ingest
    from ministral.tokens import get_counter

    store, proc = own_chroma
    document = document_create(
        kb=kb, filename="printer.md", content=io.BytesIO(MANUAL.encode()), enqueue=False
    ).document
    tools = IngestTools(embedder=embedder, store=store, count_llm_tokens=get_counter().text)
    assert document_ingest(document_id=document.pk, owner="test:1:1", tools=tools).status == "ready"
    chat = ChatTools(embedder=embedder, store=store, counter=get_counter(), llm=chat_tools(kb).llm)
    events = answer_stream(
        kb=kb, asker=Asker.for_cli(), question="What does E-42 mean?", tools=chat
    )
    seen = [next(events)]  # the conversation exists; now the vector store goes away
    proc.kill()
    proc.wait(10)
    seen += list(events)
    error = error_of(seen)
    assert error["code"] == "store_unavailable" and "search index" in error["message"]
    reply = Message.objects.get(pk=seen[-1].data["message_id"])
    assert reply.status == "error" and reply.error == error["message"]
    assert not llm_server.chat_requests


def test_failed_and_cut_off_answers_never_come_back_as_if_whole(
    kb, ingest_text, llm_server, settings
):
    settings.REWRITE_FOLLOWUPS = False
    ingest_text(kb, "printer.md", MANUAL)
    llm_server.script(Reply.drop(after_tokens=3, text="PARTIAL answer that broke off midway"))
    _, broken = ask(kb, "What does E-42 mean?")
    assert broken.status == "error" and broken.content.startswith("PARTIAL")
    llm_server.script(Reply(text="CUTOFF " * 50, finish_reason="length"))
    events, cut = ask(kb, "Tell me more", conversation_uid=str(broken.conversation.uid))
    assert cut.status == "truncated" and error_of(events)["code"] == "truncated"
    llm_server.script(Reply(text="A whole answer [1]."))
    ask(kb, "And now?", conversation_uid=str(broken.conversation.uid))
    last = llm_server.chat_requests[-1].body["messages"]
    assert "PARTIAL" not in str(last) and "CUTOFF" not in str(last)
    assert [m["role"] for m in last] == ["system", "user"]  # neither earlier pair went back


def test_an_unexpected_failure_is_an_error_event_not_a_traceback(kb, llm_server, embedder):
    from ministral.tokens import get_counter

    class BrokenStore:
        def query(self, **kwargs):
            raise RuntimeError("disk on fire")

    chat = ChatTools(
        embedder=embedder, store=BrokenStore(), counter=get_counter(), llm=chat_tools(kb).llm
    )
    events, reply = ask(kb, "What does E-42 mean?", tools=chat)
    error = error_of(events)
    assert error["code"] == "internal" and "RuntimeError" in error["message"]
    assert "disk on fire" not in error["message"]  # details go to the log, not the page
    assert reply.status == "error"

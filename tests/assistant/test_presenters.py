"""Each surface presents the same events its own way: links, HTML, no trace for visitors."""

from __future__ import annotations

from assistant.events import ChatEvent
from assistant.presenters import api_events, api_link, page_events, page_link, widget_events

SOURCE = {"number": 1, "document_id": 7, "document": "manual.md", "pages": [3]}


def events():
    yield ChatEvent("conversation", {"id": "c", "kb": "k"})
    yield ChatEvent("sources", {"sources": [SOURCE], "prompt_tokens": 10, "context_window": 100})
    yield ChatEvent("reasoning", {"text": "private trace"})
    yield ChatEvent("delta", {"text": "**Refill** the tray [1]."})
    yield ChatEvent("done", {"message_id": 1, "status": "complete"})


def test_the_page_links_sources_to_the_document_view_and_renders_html():
    shown = list(page_events(events()))
    sources = next(e for e in shown if e.kind == "sources").data["sources"]
    assert sources[0]["url"] == "/documents/7/?page=3#page-3" == page_link(SOURCE)
    html = [e.data["html"] for e in shown if e.kind == "html"]
    assert (
        html
        and "<strong>Refill</strong>" in html[-1]
        and 'href="/documents/7/?page=3#page-3"' in html[-1]
    )
    assert any(e.kind == "reasoning" for e in shown)  # the page can show the trace


def test_a_widget_visitor_gets_its_own_links_and_never_the_trace():
    shown = list(widget_events(events(), lambda s: f"https://help/{s['document_id']}"))
    assert not [e for e in shown if e.kind == "reasoning"]
    sources = next(e for e in shown if e.kind == "sources").data["sources"]
    assert sources[0]["url"] == "https://help/7"


def test_api_clients_get_absolute_links_but_no_html():
    signed_in = list(api_events(events(), api_link(base="https://docs.example", key_id=None)))
    assert not [e for e in signed_in if e.kind == "html"]
    url = next(e for e in signed_in if e.kind == "sources").data["sources"][0]["url"]
    assert url.startswith("https://docs.example/documents/7/")
    keyed = list(api_events(events(), api_link(base="https://docs.example", key_id=3)))
    url = next(e for e in keyed if e.kind == "sources").data["sources"][0]["url"]
    assert url.startswith("https://docs.example/cite/") and url.endswith("#page-3")


def test_a_page_link_names_the_cited_chunks_for_the_viewer_to_highlight():
    source = {**SOURCE, "chunk_ids": [12, 13]}
    assert page_link(source) == "/documents/7/?page=3&chunks=12,13#page-3"
    unpaged = {**SOURCE, "pages": [], "chunk_ids": [5]}
    assert page_link(unpaged) == "/documents/7/?chunks=5"

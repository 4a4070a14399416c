"""How each surface shows an answer: where its sources link to, and its rendered HTML.

The question path stores and streams sources without URLs; each surface links them its
own way when it shows them. The chat page and the widget also get the answer as
sanitised HTML while it streams; the API and the command line get only the events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django.urls import reverse

from .citations import sources_cited
from .citelinks import citation_fragment, citation_sign
from .events import ChatEvent
from .rendering import render_answer
from .tools import llm_config

HTML_EVERY_SECONDS = 0.15  # re-render the Markdown at most this often while streaming
Link = Callable[[dict[str, Any]], str]


def page_link(source: dict[str, Any]) -> str:
    """The chat page's own document view, at the cited page, naming the cited chunks so
    the viewer can highlight the passage."""
    url = reverse("document-view", args=[source["document_id"]])
    query = {}
    if source.get("pages"):
        query["page"] = str(source["pages"][0])
    if source.get("chunk_ids"):
        query["chunks"] = ",".join(map(str, source["chunk_ids"]))
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    if source.get("pages"):
        url += f"#page-{source['pages'][0]}"
    return url


def linked(sources: Sequence[dict[str, Any]], link: Link) -> list[dict[str, Any]]:
    return [{**source, "url": link(source)} for source in sources]


def citations_linked(citations: dict[str, Any], link: Link) -> dict[str, Any]:
    """sources_cited's grouping, each entry linked to its first passage's page."""

    def entry(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "url": link({**item, "pages": item.get("link_pages") or item["pages"]})}

    return {
        **citations,
        "cited": [entry(item) for item in citations["cited"]],
        "more": [entry(item) for item in citations["more"]],
    }


def message_citations(text: str, sources: Sequence[dict[str, Any]], link: Link) -> dict[str, Any]:
    """A saved answer's sources, grouped and linked as they were when it streamed."""
    return citations_linked(sources_cited(text=text, sources=sources), link)


def answer_html(text: str, sources: Sequence[dict[str, Any]], link: Link) -> str:
    return _render(text, [link(s) for s in sources])


def _render(text: str, urls: Sequence[str]) -> str:
    return render_answer(text, urls, outside_links=settings.ANSWER_LINKS == "all")


def answer_shown(message: Any) -> dict[str, Any]:
    """What the chat page shows of a saved answer: its HTML, grouped sources and passages
    (for the [n] previews, as JSON text for a data attribute)."""
    passages = linked(message.sources, page_link)
    return {
        "html": answer_html(message.content, message.sources, page_link),
        "citations": message_citations(message.content, message.sources, page_link),
        "passages_json": json.dumps(passages),
    }


def widget_transcript(*, conversation: Any, owner_key: str, link: Link) -> list[dict[str, Any]]:
    """A widget conversation as its visitor sees it again: each answer with its id, status
    and the visitor's own rating of it (1, -1 or None), so the thumbs show their state."""
    ratings = dict(
        conversation.messages.filter(feedback__owner_key=owner_key).values_list(
            "pk", "feedback__rating"
        )
    )
    messages = []
    for message in conversation.messages.exclude(status="streaming"):
        item: dict[str, Any] = {"id": message.pk, "role": message.role, "text": message.content}
        item["status"] = message.status
        item["error"] = visitor_error(None) if message.error else ""
        item["sources"] = linked(message.sources, link)
        if message.role == "assistant":
            item["html"] = answer_html(message.content, message.sources, link)
            item["citations"] = message_citations(message.content, message.sources, link)
            item["rating"] = ratings.get(message.pk)
        messages.append(item)
    return messages


def chat_mode(*, kb: Any) -> dict[str, str]:
    """Which model will answer in `kb`, shown before the first question; {} if none."""
    config = llm_config(kb)
    return {"model": config.model, "provider": config.provider_name} if config else {}


def page_events(events: Iterator[ChatEvent]) -> Iterator[ChatEvent]:
    """The chat page: linked sources, the reasoning trace, HTML as the answer grows."""
    return _with_html(_with_links(events, page_link))


VISITOR_ERROR = "Sorry, the assistant could not answer just now. Please try again later."
VISITOR_BUSY = "The assistant is busy right now. Please try again in a minute."


def visitor_error(code: str | None) -> str:
    """What an anonymous widget visitor is told about a failure: no provider's detail
    (it can name hosts, keys' owners or quotas). Staff read the detail in the admin."""
    return VISITOR_BUSY if code == "rate_limited" else VISITOR_ERROR


def widget_events(events: Iterator[ChatEvent], link: Link) -> Iterator[ChatEvent]:
    """A widget visitor: like the page, without a reasoning trace or a failure's detail."""
    visible = (_for_visitor(event) for event in events if event.kind != "reasoning")
    return _with_html(_with_links(visible, link))


def _for_visitor(event: ChatEvent) -> ChatEvent:
    if event.kind == "error":
        return ChatEvent("error", {**event.data, "message": visitor_error(event.data.get("code"))})
    if event.kind == "status" and "message" in event.data:  # retries: provider detail
        return ChatEvent("status", {**event.data, "message": VISITOR_BUSY})
    if event.kind == "done":  # what an answer cost is the site owner's business
        hidden = ("prompt_tokens", "completion_tokens", "cost")
        return ChatEvent("done", {k: v for k, v in event.data.items() if k not in hidden})
    return event


def api_events(events: Iterator[ChatEvent], link: Link) -> Iterator[ChatEvent]:
    """API clients: linked sources (see api_link), no HTML."""
    return _with_links(events, link)


def api_link(*, base: str, key_id: int | None) -> Link:
    """Absolute links an API client can open. A key's are signed citation links that work
    in any browser for API_CITATION_SECONDS (while the key lives and may read the
    document); a signed-in browser's are the document page itself. `base` is the site's
    absolute root, e.g. "https://docs.example.com"."""
    if key_id is None:
        return lambda source: base + page_link(source)
    holder = f"key:{key_id}"

    def link(source: dict[str, Any]) -> str:
        signed = citation_sign(holder=holder, source=source)
        return base + reverse("cite", args=[signed]) + citation_fragment(source)

    return link


def _with_links(events: Iterator[ChatEvent], link: Link) -> Iterator[ChatEvent]:
    for event in events:
        if event.kind == "sources":
            event = ChatEvent(
                "sources", {**event.data, "sources": linked(event.data["sources"], link)}
            )
        elif event.kind == "citations":
            event = ChatEvent("citations", citations_linked(event.data, link))
        yield event


def _with_html(events: Iterator[ChatEvent]) -> Iterator[ChatEvent]:
    """Adds ``html`` events: the whole answer so far, rendered, at most every 150 ms."""
    text: list[str] = []
    urls: list[str] = []
    last_render = 0.0
    dirty = False
    for event in events:
        if event.kind == "sources":
            urls = [s["url"] for s in event.data["sources"]]
        if event.kind == "delta":
            text.append(event.data["text"])
            dirty = True
        if event.kind in {"done", "error"} and dirty:
            yield ChatEvent("html", {"html": _render("".join(text), urls)})
            dirty = False
        yield event
        now = time.monotonic()
        if dirty and now - last_render >= HTML_EVERY_SECONDS:
            yield ChatEvent("html", {"html": _render("".join(text), urls)})
            last_render, dirty = now, False

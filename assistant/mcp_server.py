"""Docent as an MCP server: knowledge bases as tools and resources for agents.

Served over streamable HTTP at /mcp (stateless, JSON answers, so any number of web
processes serve it) and over stdio by ``manage.py mcp``. Either way an API key says who
is asking (``Authorization: Bearer dk_...`` over HTTP, ``--key`` or DOCENT_API_KEY over
stdio), and every tool sees only that key's knowledge bases. The only module that
speaks MCP (the official `mcp` SDK).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from ingest.access import kbs_readable
from ingest.filters import FilterError, document_filter_parse, documents_filtered
from ingest.models import DocumentStatus, KnowledgeBase
from ingest.selectors import document_pages

from .answers import answer_collect
from .askers import Asker
from .keys import api_key_authenticate, api_key_from_header
from .models import ApiKey
from .presenters import api_events, api_link
from .screenshots import ChatInputError
from .search import kb_search
from .services import answer_stream
from .tools import chat_tools

INSTRUCTIONS = (
    "Docent answers from an organisation's own documents. Call list_knowledge_bases "
    "first; then search for passages (cite them by document and page), ask for a written "
    "answer with citations, or get_document for a document's text by page."
)
PASSAGE_CHARS = 1200  # per passage in search results: enough to quote, compact for a model
DOCUMENT_CHARS = 60_000  # per get_document call; ask for fewer pages to see the rest
SEARCH_LIMIT = 20

Scope = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


class Caller:
    """Who this process answers for when no HTTP request names a key (stdio)."""

    token = ""
    base_url = "http://127.0.0.1:8000"


def _key(ctx: Context) -> ApiKey:
    header = (ctx.headers or {}).get("authorization")
    if header:  # over HTTP (the gate in http_app has let only a live key through)
        key = api_key_from_header(authorization=header)
    else:  # over stdio: the key manage.py mcp was started with
        key = api_key_authenticate(token=Caller.token) if Caller.token else None
    if key is None:
        raise ToolError("This needs a Docent API key (Authorization: Bearer dk_...).")
    return key


def _base_url(ctx: Context) -> str:
    headers = ctx.headers
    if not headers or not headers.get("host"):
        return Caller.base_url
    proxy = settings.SECURE_PROXY_SSL_HEADER
    https = (
        bool(proxy)
        and headers.get(proxy[0].removeprefix("HTTP_").replace("_", "-").lower()) == proxy[1]
    )
    return f"{'https' if https else 'http'}://{headers['host']}"


def _kb(key: ApiKey, slug: str) -> KnowledgeBase:
    kb = kbs_readable(user=None, key=key).filter(slug=slug).first()
    if kb is None:
        raise ToolError(
            f"No knowledge base '{slug}' for this key; list_knowledge_bases names them."
        )
    return kb


def _fresh_connections(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Tools run in the SDK's worker threads: give each call a usable database connection."""

    @functools.wraps(fn)  # the SDK reads the parameters and docstring through it
    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def list_knowledge_bases(ctx: Context) -> dict[str, Any]:
    """The knowledge bases you may search and ask: `kb` is the name the other tools take."""
    key = _key(ctx)
    found = kbs_readable(user=None, key=key).order_by("slug")
    return {
        "knowledge_bases": [
            {
                "kb": kb.slug,
                "name": kb.name,
                "description": kb.description,
                "documents": kb.documents.filter(status=DocumentStatus.READY).count(),
            }
            for kb in found
        ]
    }


FILTERS_HELP = (
    '`filters` (optional) limits the documents: {"documents": [names or ids], '
    '"kinds": ["pdf", "docx", "markdown", "text", "html", "image"], '
    '"tags": [...], "uploaded_after": "2026-01-31", "uploaded_before": ...}.'
)


def _documents(kb: KnowledgeBase, filters: dict[str, Any] | None) -> tuple[int, ...] | None:
    try:
        return documents_filtered(kb=kb, filters=document_filter_parse(filters))
    except FilterError as exc:
        raise ToolError(str(exc)) from exc


def search(
    kb: str, query: str, ctx: Context, limit: int = 5, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    key = _key(ctx)
    knowledge_base = _kb(key, kb)
    found = kb_search(
        kb=knowledge_base,
        query=query,
        tools=chat_tools(knowledge_base),
        documents=_documents(knowledge_base, filters),
    )
    link = api_link(base=_base_url(ctx), key_id=key.pk)
    passages = []
    for number, passage in enumerate(found.passages[: max(1, min(limit, SEARCH_LIMIT))], 1):
        source = {  # what a signed citation link names: the passage's chunks and pages
            "number": number,
            "document_id": passage.document_id,
            "pages": list(passage.pages),
            "chunk_ids": [c.pk for c in passage.chunks],
        }
        passages.append(
            {
                "document": passage.document_name,
                "document_id": passage.document_id,
                "pages": list(passage.pages),
                "section": passage.heading,
                "score": round(passage.score, 4),
                "text": " ".join(passage.text.split())[:PASSAGE_CHARS],
                "url": link(source),
            }
        )
    result: dict[str, Any] = {"matched": found.match.matched, "passages": passages}
    if not found.match.matched:
        result["nearest_documents"] = list(found.nearest_documents())
    return result


search.__doc__ = (
    "Passages of knowledge base `kb` that match `query`, best first: document, pages, "
    "section, score (fused relevance) and text. `matched` is false when nothing in the "
    "knowledge base answers the query; then `nearest_documents` names the closest ones. "
    "`limit` is 1 to 20 passages. " + FILTERS_HELP
)


def ask(
    kb: str, question: str, ctx: Context, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    key = _key(ctx)
    knowledge_base = _kb(key, kb)
    try:
        events = answer_stream(
            kb=knowledge_base,
            asker=Asker.for_key(key, surface="mcp"),
            question=question,
            filters=document_filter_parse(filters),
        )
    except (ChatInputError, FilterError) as exc:
        raise ToolError(str(exc)) from exc
    answer = answer_collect(api_events(events, api_link(base=_base_url(ctx), key_id=key.pk)))
    if answer.failed:
        raise ToolError(answer.error.get("message", "The answer failed."))
    cited = answer.citations.get("cited", [])
    sources = [
        {k: entry.get(k) for k in ("numbers", "document", "document_id", "pages", "section", "url")}
        for entry in cited
    ]
    return {"answer": answer.answer, "retrieval_only": answer.retrieval_only, "sources": sources}


ask.__doc__ = (
    "A written answer to `question` from knowledge base `kb`, citing its sources as [n]; "
    "`sources` says which document and pages each [n] is. Without a language model "
    "configured, `retrieval_only` is true and the answer quotes the best passages. " + FILTERS_HELP
)


def get_document(
    kb: str, document: str, ctx: Context, pages: list[int] | None = None
) -> dict[str, Any]:
    """The text of one document of knowledge base `kb`, by page. `document` is its name or
    id (as search returns them); `pages` picks pages (all by default). Long documents are
    cut at about 60,000 characters: `truncated` then says so; ask for later pages."""
    key = _key(ctx)
    return _document_text(_kb(key, kb), document, pages)


def _document_text(kb: KnowledgeBase, document: str, pages: list[int] | None) -> dict[str, Any]:
    ready = kb.documents.filter(status=DocumentStatus.READY)
    found = ready.filter(filename=document).first()
    if found is None and str(document).isdigit():
        found = ready.filter(pk=int(document)).first()
    if found is None:
        raise ToolError(f"No ready document '{document}' in {kb.slug}; search names them.")
    texts = document_pages(document=found)
    if pages:
        texts = [p for p in texts if p["number"] in set(pages)]
    out: list[dict[str, Any]] = []
    size, truncated = 0, False
    for page in texts:
        if size + len(page["text"]) > DOCUMENT_CHARS and out:
            truncated = True
            break
        out.append(page)
        size += len(page["text"])
    return {
        "document": found.filename,
        "document_id": found.pk,
        "page_count": found.page_count,
        "pages": out,
        "truncated": truncated,
    }


def build_server() -> MCPServer:
    server = MCPServer(name="docent", title="Docent", instructions=INSTRUCTIONS)
    for tool in (list_knowledge_bases, search, ask, get_document):
        server.add_tool(_fresh_connections(tool), structured_output=True)

    @server.resource(
        "docent://{kb}/documents/{document_id}",
        name="document",
        description="A document's text by page, as JSON: docent://<kb>/documents/<id>.",
        mime_type="application/json",
    )
    @_fresh_connections
    def read_document(kb: str, document_id: str, ctx: Context) -> str:
        return json.dumps(_document_text(_kb(_key(ctx), kb), document_id, None))

    return server


def http_app() -> ASGIApp:
    """/mcp as an ASGI app that refuses a request without a live API key (401) before MCP
    reads it. Its lifespan (from the ASGI server) runs the SDK's session manager."""
    mcp_app = build_server().streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        # A bearer key, never a cookie, authenticates: a rebinding page has nothing to
        # borrow; Django's ALLOWED_HOSTS still guards every other path.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    authenticate = sync_to_async(_header_live, thread_sensitive=False)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
            if not await authenticate(header):
                await _unauthorised(send)
                return
        await mcp_app(scope, receive, send)

    return app


def _header_live(authorization: str) -> bool:
    close_old_connections()
    try:
        return api_key_from_header(authorization=authorization) is not None
    finally:
        close_old_connections()


async def _unauthorised(send: Any) -> None:
    body = json.dumps(
        {"error": "Send a Docent API key as 'Authorization: Bearer dk_...' (manage.py apikey)."}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="docent"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

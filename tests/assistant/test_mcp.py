"""MCP: the official SDK's own client over streamable HTTP (/mcp) and over stdio."""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from assistant.keys import api_key_create
from ingest.models import Document
from ingest.services import kb_get_or_create
from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
MANUAL = (
    "# Printer manual\n\n## Lights\n\nThe amber light means the toner is low; order a new "
    "cartridge.\n\n## Paper\n\nLoad at most 250 sheets of A4 paper into the tray."
)


@pytest.fixture
def kbs(ingest_text):
    printers = kb_get_or_create(name="Printers")
    ingest_text(printers, "printer.md", MANUAL)
    ingest_text(printers, "scanner.md", "# Scanner\n\nClean the scanner glass once a week.")
    secret = kb_get_or_create(name="Secret")
    ingest_text(secret, "salaries.md", "# Salaries\n\nConfidential pay bands for every team.")
    _, token = api_key_create(name="printers only", knowledge_bases=[printers])
    return token


async def session_transcript(client: Client) -> dict:
    """Every tool a desktop agent would use, in order, with their structured results."""
    tools = sorted(t.name for t in (await client.list_tools()).tools)

    async def call(name: str, **arguments) -> dict:
        result = await client.call_tool(name, arguments)
        return {"error": result.is_error, **(result.structured_content or {})} | (
            {"text": result.content[0].text} if result.is_error else {}
        )

    templates = await client.list_resource_templates()
    return {
        "tools": tools,
        "kbs": await call("list_knowledge_bases"),
        "search": await call("search", kb="printers", query="What does the amber light mean?"),
        "off_topic": await call("search", kb="printers", query="How do I bake sourdough bread?"),
        "filtered": await call(
            "search",
            kb="printers",
            query="What does the amber light mean?",
            filters={"documents": ["scanner.md"]},
        ),
        "filtered_in": await call(
            "search",
            kb="printers",
            query="How often should the scanner glass be cleaned?",
            filters={"documents": ["scanner.md"], "kinds": ["markdown"]},
        ),
        "bad_filter": await call("search", kb="printers", query="x", filters={"tags": ["none"]}),
        "ask": await call("ask", kb="printers", question="What does the amber light mean?"),
        "document": await call("get_document", kb="printers", document="printer.md"),
        "other_kb": await call("search", kb="secret", query="pay bands"),
        "other_doc": await call("get_document", kb="secret", document="salaries.md"),
        "other_ask": await call("ask", kb="secret", question="What are the pay bands?"),
        "templates": [t.uri_template for t in templates.resource_templates],
    }


def run_async(coroutine) -> dict:
    """The coroutine's result, run on an event loop of its own thread: a browser test in
    the same process may have left Playwright's loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def check_transcript(found: dict, *, retrieval_only: bool) -> None:
    assert found["tools"] == ["ask", "get_document", "list_knowledge_bases", "search"]
    assert [kb["kb"] for kb in found["kbs"]["knowledge_bases"]] == ["printers"]
    best = found["search"]["passages"][0]
    assert found["search"]["matched"] and best["document"] == "printer.md"
    assert "amber light" in best["text"] and best["url"].startswith("http")
    assert found["off_topic"]["matched"] is False and found["off_topic"]["passages"] == []
    assert {p["document"] for p in found["filtered"]["passages"]} <= {"scanner.md"}
    assert {p["document"] for p in found["filtered_in"]["passages"]} == {"scanner.md"}
    assert found["bad_filter"]["error"] and "No ready document" in found["bad_filter"]["text"]
    assert "toner is low" in found["ask"]["answer"]
    assert found["ask"]["retrieval_only"] is retrieval_only
    assert found["ask"]["sources"][0]["document"] == "printer.md"
    assert "250 sheets" in found["document"]["pages"][0]["text"]
    refusals = (found["other_kb"], found["other_doc"], found["other_ask"])
    for refused in refusals:  # the key's scope, in every tool
        assert refused["error"] and "No knowledge base 'secret'" in refused["text"]
    assert found["templates"] == ["docent://{kb}/documents/{document_id}"]


def test_streamable_http_with_a_bearer_key(live_app, kbs):
    secret = Document.objects.get(filename="salaries.md").pk

    async def run() -> dict:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {kbs}"})
        async with (
            http,
            Client(streamable_http_client(f"{live_app.url}/mcp", http_client=http)) as client,
        ):
            found = await session_transcript(client)
            document = await client.read_resource(
                f"docent://printers/documents/{found['document']['document_id']}"
            )
            found["resource"] = json.loads(document.contents[0].text)
            try:
                other = await client.read_resource(f"docent://secret/documents/{secret}")
                found["other_resource"] = other.contents[0].text
            except MCPError as exc:
                found["other_resource"] = str(exc)
            return found

    found = run_async(run())
    check_transcript(found, retrieval_only=False)  # the live app's stand-in model wrote it
    assert "[1]" in found["ask"]["answer"]
    assert found["resource"]["document"] == "printer.md"
    assert found["other_resource"].startswith("Error")  # refused (the SDK words it)
    assert "Confidential" not in found["other_resource"]
    anonymous = httpx.post(
        f"{live_app.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith(
        "Bearer"
    )
    wrong = httpx.post(
        f"{live_app.url}/mcp", json={}, headers={"Authorization": "Bearer dk_not_a_key"}
    )
    assert wrong.status_code == 401


def test_stdio_for_desktop_clients(kbs):
    env = subprocess_env(LLM_BASE_URL="", DOCENT_API_KEY=kbs)
    params = StdioServerParameters(
        command=sys.executable, args=[str(REPO / "manage.py"), "mcp"], env=env, cwd=str(REPO)
    )

    async def run() -> dict:
        async with Client(params, read_timeout_seconds=120) as client:
            return await session_transcript(client)

    check_transcript(run_async(run()), retrieval_only=True)  # no model: the passages

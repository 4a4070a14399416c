"""Print what other people's clients see: the openai SDK on /v1 and the MCP SDK on /mcp.

Starts a throwaway Docent (its own DATA_DIR, the stand-in model on loopback), uploads a
small manual, and prints each request and answer as a transcript. Run it with
`.venv/bin/python scripts/client_sessions.py`; nothing is kept.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from _app import Docent, FakeLLM, http_client  # noqa: E402

MANUAL = (
    "# Printer manual\n\n## Lights\n\nThe amber light means the toner is low; order a new "
    "cartridge.\n\n## Errors\n\nError E-42 means the paper tray is jammed: open the tray and "
    "remove the sheet."
)


def say(title: str, value: object) -> None:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    print(f"--- {title}\n{text}\n")


def openai_session(base: str, token: str, slug: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=token)
    say("GET /v1/models", [m.id for m in client.models.list()])
    question = [{"role": "user", "content": "What does the amber light mean?"}]
    whole = client.chat.completions.create(model=f"docent/{slug}", messages=question)
    say("chat.completions.create (whole): content", whole.choices[0].message.content)
    say("... message.sources", whole.choices[0].message.model_extra["sources"])
    say("... usage", whole.usage.model_dump())
    stream = client.chat.completions.create(
        model=f"docent/{slug}",
        messages=[{"role": "user", "content": "What does E-42 mean?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    say(f"chat.completions.create (stream, {len(chunks)} chunks): text", text)
    say("... last chunk's sources", final.model_extra["sources"])
    try:
        client.chat.completions.create(model="docent/someone-elses", messages=question)
    except openai.NotFoundError as exc:
        say("another knowledge base", f"{exc.status_code} {exc.body}")


async def mcp_session(base: str, token: str, slug: str) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        say("MCP over streamable HTTP: tools", [t.name for t in (await client.list_tools()).tools])
        await mcp_calls(client, slug)


async def mcp_stdio_session(env: dict[str, str], token: str, slug: str) -> None:
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable,
        args=[str(REPO / "manage.py"), "mcp"],
        env={**env, "DOCENT_API_KEY": token},
        cwd=str(REPO),
    )
    async with Client(server, read_timeout_seconds=120) as client:
        say(
            "MCP over stdio (manage.py mcp): tools",
            [t.name for t in (await client.list_tools()).tools],
        )
        await mcp_calls(client, slug)


async def mcp_calls(client, slug: str) -> None:
    calls = [
        ("list_knowledge_bases", {}),
        ("search", {"kb": slug, "query": "amber light", "limit": 2}),
        ("search", {"kb": slug, "query": "How do I bake bread?"}),
        ("ask", {"kb": slug, "question": "What does E-42 mean?"}),
        ("get_document", {"kb": slug, "document": "printer-manual.md"}),
        ("search", {"kb": "someone-elses", "query": "salaries"}),
    ]
    for name, arguments in calls:
        result = await client.call_tool(name, arguments)
        shown = result.structured_content if not result.is_error else result.content[0].text
        say(f"MCP {name}({json.dumps(arguments)})", shown)


def main() -> int:
    llm = FakeLLM(delay_per_token=0).start()
    app = Docent(llm=llm, kb_name="Printers")
    try:
        app.prepare()
        app.start()
        with http_client(timeout=120) as client:
            document = app.upload(client, "printer-manual.md", MANUAL)
            app.wait_settled(client, {document}, timeout=180)
        openai_session(app.url, app.token, app.slug)
        asyncio.run(mcp_session(app.url, app.token, app.slug))
        asyncio.run(mcp_stdio_session(app.env, app.token, app.slug))
    finally:
        app.cleanup()
        llm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

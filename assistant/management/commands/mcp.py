"""`manage.py mcp --key dk_...`: Docent as an MCP server over stdio, for desktop clients.

The client starts this command itself; stdout carries the protocol, so everything else
goes to stderr. The key (or DOCENT_API_KEY) decides which knowledge bases it sees, as
over HTTP at /mcp.
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare


class Command(BaseCommand):
    help = "Serve Docent's MCP tools over stdio, for one API key's knowledge bases."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--key",
            default=os.environ.get("DOCENT_API_KEY", ""),
            help="An API key (dk_...; default DOCENT_API_KEY), from manage.py apikey",
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where Docent's pages are served, for the links in results",
        )

    def handle(self, *args, key: str, base_url: str, **options) -> None:
        from assistant.keys import api_key_authenticate
        from assistant.mcp_server import Caller, build_server

        database_prepare(stdout=self.stderr)
        if not key or api_key_authenticate(token=key) is None:
            raise CommandError(
                "Give a live API key with --key or DOCENT_API_KEY (manage.py apikey)."
            )
        Caller.token, Caller.base_url = key, base_url.rstrip("/")
        print("Docent MCP server on stdio", file=sys.stderr)
        build_server().run("stdio")

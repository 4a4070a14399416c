"""`manage.py ask --kb NAME [--image FILE] QUESTION`: the chat page's path, in a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare
from ingest.models import KnowledgeBase

FAILED = {"error", "stopped", "truncated"}


class Command(BaseCommand):
    help = "Ask a knowledge base a question; prints the streamed answer, then its sources."

    def add_arguments(self, parser) -> None:
        parser.add_argument("question", nargs="+")
        parser.add_argument("--kb", required=True, help="Knowledge base name")
        parser.add_argument("--image", action="append", default=[], type=Path, help="Screenshot")
        parser.add_argument("--conversation", help="Continue this conversation (its id)")
        parser.add_argument("--show-reasoning", action="store_true")
        parser.add_argument(
            "--all-sources",
            action="store_true",
            help="Also list the passages that were read but not cited",
        )

    def handle(self, *args, question: list[str], kb: str, image: list[Path], **options) -> None:
        from assistant.askers import Asker
        from assistant.screenshots import AttachedBytes
        from assistant.services import ChatInputError, answer_stream

        database_prepare(stdout=self.stdout)
        knowledge_base = KnowledgeBase.objects.filter(name__iexact=kb).first()
        if knowledge_base is None:
            names = ", ".join(KnowledgeBase.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No knowledge base named {kb!r} (existing: {names}).")
        try:
            events = answer_stream(
                kb=knowledge_base,
                asker=Asker.for_cli(),
                question=" ".join(question),
                images=[AttachedBytes(path.read_bytes()) for path in image],
                conversation_uid=options["conversation"],
            )
        except OSError as exc:
            raise CommandError(f"Cannot read image: {exc}") from exc
        except ChatInputError as exc:
            raise CommandError(str(exc)) from exc
        if not self._show(
            events, reasoning=options["show_reasoning"], everything=options["all_sources"]
        ):
            sys.exit(1)

    def _show(self, events, *, reasoning: bool, everything: bool) -> bool:
        """Print the answer as it streams, then its sources; False when it failed."""
        out, failed, thinking = self.stdout, False, False
        citations: dict = {}
        conversation = ""
        for event in events:
            data = event.data
            if event.kind == "delta":
                out.write(("\n" if thinking else "") + data["text"], ending="")
                out.flush()
                thinking = False
            elif event.kind == "reasoning" and reasoning:
                thinking = True
                self.stderr.write(data["text"], ending="")
            elif event.kind == "status" and data.get("message"):
                self.stderr.write(data["message"])
            elif event.kind == "citations":
                citations = data
            elif event.kind == "error":
                failed = True
                self.stderr.write(f"\nError: {data['message']}")
            elif event.kind == "conversation":
                conversation = data["id"]
            elif event.kind == "done":
                failed = failed or data["status"] in FAILED
        out.write("\n")
        self._sources(citations, everything=everything)
        out.write(f"\nConversation: {conversation}")
        return not failed

    def _sources(self, citations: dict, *, everything: bool) -> None:
        """The cited documents with their pages and an excerpt; the rest as one line."""
        cited, more = citations.get("cited", []), citations.get("more", [])
        if cited:
            self.stdout.write("\nSources:")
        for entry in cited + (more if everything else []):
            numbers = "".join(f"[{n}]" for n in entry["numbers"]) if entry["cited"] else "  - "
            pages = ", ".join(map(str, entry["pages"]))
            where = f", page{'s' if len(entry['pages']) > 1 else ''} {pages}" if pages else ""
            section = f" - {entry['section']}" if entry.get("section") else ""
            self.stdout.write(f"  {numbers} {entry['document']}{where}{section}")
            if entry["cited"] and entry.get("excerpt"):
                self.stdout.write(f'      "{entry["excerpt"][:160]}…"')
        if more and not everything:
            count = citations["more_passages"]
            self.stdout.write(
                f"  ({count} more passage{'s' if count != 1 else ''} read, not cited: "
                "--all-sources lists them)"
            )

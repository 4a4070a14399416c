"""`manage.py ask --kb NAME [--image FILE] QUESTION`: the chat page's path, in a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare
from ingest.models import KnowledgeBase


class Command(BaseCommand):
    help = "Ask a knowledge base a question; prints the streamed answer, then its sources."

    def add_arguments(self, parser) -> None:
        parser.add_argument("question", nargs="+")
        parser.add_argument("--kb", required=True, help="Knowledge base name")
        parser.add_argument("--image", action="append", default=[], type=Path, help="Screenshot")
        parser.add_argument("--conversation", help="Continue this conversation (its id)")
        parser.add_argument("--show-reasoning", action="store_true")

    def handle(self, *args, question: list[str], kb: str, image: list[Path], **options) -> None:
        from assistant.models import Conversation
        from assistant.services import ChatInputError, answer_stream, chat_tools, screenshot_prepare

        database_prepare(stdout=self.stdout)
        knowledge_base = KnowledgeBase.objects.filter(name__iexact=kb).first()
        if knowledge_base is None:
            names = ", ".join(KnowledgeBase.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No knowledge base named {kb!r} (existing: {names}).")
        conversation = None
        if options["conversation"]:
            conversation = Conversation.objects.filter(uid=options["conversation"]).first()
            if conversation is None:
                raise CommandError(f"No conversation {options['conversation']}.")
        try:
            shots = [screenshot_prepare(data=path.read_bytes()) for path in image]
            events = answer_stream(
                kb=knowledge_base,
                question=" ".join(question),
                tools=chat_tools(knowledge_base),
                conversation=conversation,
                screenshots=shots,
                owner_key="cli",
            )
        except OSError as exc:
            raise CommandError(f"Cannot read image: {exc}") from exc
        except ChatInputError as exc:
            raise CommandError(str(exc)) from exc

        out = self.stdout
        sources: list[dict] = []
        failed = False
        thinking = False
        for event in events:
            if event.kind == "delta":
                if thinking:
                    out.write("\n")
                    thinking = False
                out.write(event.data["text"], ending="")
                out.flush()
            elif event.kind == "reasoning" and options["show_reasoning"]:
                thinking = True
                self.stderr.write(event.data["text"], ending="")
            elif event.kind == "sources":
                sources = event.data["sources"]
            elif event.kind == "status" and event.data.get("message"):
                self.stderr.write(event.data["message"])
            elif event.kind == "error":
                failed = True
                self.stderr.write(f"\nError: {event.data['message']}")
            elif event.kind == "conversation":
                conversation_id = event.data["id"]
            elif event.kind == "done":
                failed = failed or event.data["status"] in {"error", "stopped", "truncated"}
        out.write("\n")
        if sources:
            out.write("\nSources:")
            for source in sources:
                pages = f", page {source['pages'][0]}" if source["pages"] else ""
                out.write(f"  [{source['number']}] {source['document']}{pages}")
        out.write(f"\nConversation: {conversation_id}")
        if failed:
            sys.exit(1)

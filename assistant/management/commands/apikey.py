"""`manage.py apikey --name NAME --kb KB [--kb KB2] [--write]`: make an API key for scripts."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare
from ingest.models import KnowledgeBase


class Command(BaseCommand):
    help = "Create an API key scoped to knowledge bases and print it (it is shown only once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--kb", action="append", required=True, help="Knowledge base name (repeatable)"
        )
        parser.add_argument(
            "--write", action="store_true", help="May upload, re-index and delete documents"
        )

    def handle(self, *args, name: str, kb: list[str], write: bool, **options) -> None:
        from assistant.keys import api_key_create

        database_prepare(stdout=self.stdout)
        kbs = []
        for kb_name in kb:
            found = KnowledgeBase.objects.filter(name__iexact=kb_name).first()
            if found is None:
                raise CommandError(f"No knowledge base named {kb_name!r}.")
            kbs.append(found)
        _, token = api_key_create(name=name, knowledge_bases=kbs, can_write=write)
        self.stdout.write(token)  # alone on stdout, so that scripts can capture it
        self.stderr.write(
            "This key is shown only once and Docent keeps only its hash: store it now. "
            "Revoke it in the admin (API keys)."
        )

"""`manage.py kb_reindex SLUG... | --mismatched`: index knowledge bases again with the
server's embedder, after a change of EMBEDDING_BACKEND or EMBEDDING_MODEL_PATH.

After a change of backend it is optional: a knowledge base keeps answering with the
backend that indexed it, and this moves it to the server's (int8 embeds a question in a
third of torch's CPU). After a change of model it is needed. Its vectors are dropped and
every document is queued for the worker; lexical search keeps answering meanwhile, and
each document's vectors are back as soon as the worker has done it.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare


class Command(BaseCommand):
    help = "Drop knowledge bases' vectors and queue their documents to be indexed again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slugs", nargs="*", help="Knowledge bases (slug or name)")
        parser.add_argument(
            "--mismatched",
            action="store_true",
            help="Every knowledge base indexed with another embedder than the server's",
        )

    def handle(self, *args, slugs: list[str], mismatched: bool, **options) -> None:
        from django.db.models import Q

        from ingest.models import KnowledgeBase
        from ingest.services import ingest_tools
        from ingest.services.embedders import kb_reindex_embedder, kbs_embedder_mismatched

        if not slugs and not mismatched:
            raise CommandError("Name the knowledge bases to re-index, or pass --mismatched.")
        database_prepare(stdout=self.stdout)
        tools = ingest_tools()
        kbs = [KnowledgeBase.objects.filter(Q(slug=s) | Q(name=s)).first() or s for s in slugs]
        missing = [kb for kb in kbs if isinstance(kb, str)]
        if missing:
            raise CommandError(f"No knowledge base called {', '.join(missing)}.")
        targets = [kb for kb in kbs if isinstance(kb, KnowledgeBase)]
        if mismatched:
            targets += kbs_embedder_mismatched(embedder_name=tools.embedder.name)
        for kb in dict.fromkeys(targets):
            queued = kb_reindex_embedder(
                kb=kb, store=tools.store, embedder_name=tools.embedder.name
            )
            self.stdout.write(f"{kb.name}: {queued} document(s) queued, embedder {kb.embedder}.")
        if not targets:
            self.stdout.write("Every knowledge base already uses the server's embedder.")

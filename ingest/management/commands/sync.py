"""`manage.py sync PATH --kb NAME [--watch]`: a knowledge base mirrors a folder.

Prints what it will do (new, changed, removed, unchanged), then does it: new files are
uploaded, changed ones (by content hash) replaced, removed ones deleted. Uploads are
queued for the worker (`make run` runs one). `--dry-run` stops after the summary;
`--watch` then follows the folder, syncing each batch of changes as it happens.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingest.management.database import database_prepare

WATCH_DEBOUNCE_MS = 800  # changes this close together are one batch (an editor's save)


class Command(BaseCommand):
    help = "Mirror a folder into a knowledge base: upload new files, replace changed ones, delete removed ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The folder")
        parser.add_argument("--kb", required=True, help="Knowledge base name (created if new)")
        parser.add_argument(
            "--include",
            action="append",
            default=[],
            help="Only these files, e.g. '*.pdf' (repeatable)",
        )
        parser.add_argument(
            "--exclude",
            action="append",
            default=[],
            help="Never these files, e.g. 'drafts/*' (repeatable)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the summary and change nothing"
        )
        parser.add_argument("--watch", action="store_true", help="Keep following the folder")

    def handle(
        self, *args, path: Path, kb: str, include, exclude, dry_run: bool, watch: bool, **options
    ) -> None:
        from ingest.pipeline.types import IngestError
        from ingest.services import kb_get_or_create
        from ingest.store import get_store
        from ingest.sync import folder_plan, folder_sync

        database_prepare(stdout=self.stdout)
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        knowledge_base = kb_get_or_create(name=kb)
        store = get_store()

        def once(*, quiet: bool = False) -> None:
            try:
                plan = folder_plan(kb=knowledge_base, root=path, include=include, exclude=exclude)
            except IngestError as exc:
                raise CommandError(str(exc)) from exc
            if quiet and not plan:
                return
            self.stdout.write(f"{path.resolve()} -> {knowledge_base.name}: {plan.summary()}")
            if dry_run or not plan:
                return
            report = folder_sync(kb=knowledge_base, plan=plan, store=store, said=self.stdout.write)
            if report.skipped:
                self.stdout.write(f"{len(report.skipped)} skipped (see above)")
            self.stdout.flush()

        once()
        if not watch or dry_run:
            return
        import watchfiles

        # The watcher starts on the first step of the generator (it yields an empty batch
        # after a second without changes); only then is nothing missed, so that is when
        # it says so, and catches up on whatever changed during the first sync.
        changes = watchfiles.watch(
            path,
            debounce=WATCH_DEBOUNCE_MS,
            yield_on_timeout=True,
            rust_timeout=1000,
            raise_interrupt=False,
        )
        try:
            next(changes, None)
            self.stdout.write(f"Watching {path.resolve()} (Ctrl-C stops)")
            self.stdout.flush()
            once(quiet=True)
            for batch in changes:
                if batch:
                    once()
        except KeyboardInterrupt:
            pass

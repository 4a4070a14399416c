"""`manage.py ingest PATH... --kb NAME`: index files or folders from the command line.

Runs the same service the worker runs, in this process, against the same database
and Chroma server, so it works whether or not the app is up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingest.management.database import database_prepare
from ingest.models import Document, DocumentStatus


class Command(BaseCommand):
    help = "Ingest files or folders (recursively) into a knowledge base."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="Files or folders")
        parser.add_argument("--kb", required=True, help="Knowledge base name (created if new)")
        parser.add_argument(
            "--no-progress", action="store_true", help="Print result lines only, no bar"
        )

    def handle(self, *args, paths: list[Path], kb: str, no_progress: bool, **options) -> None:
        from ingest.services import document_create, kb_get_or_create, worker_identity

        database_prepare(stdout=self.stdout)
        files = _collect(paths)
        if not files:
            raise CommandError("No files found in the given paths.")
        knowledge_base = kb_get_or_create(name=kb)
        owner = worker_identity()
        tools = None
        failures = 0
        bar = tqdm(
            total=len(files) * 100,
            unit="%",
            disable=no_progress,
            file=sys.stderr,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
        )
        for index, path in enumerate(files):
            base = index * 100
            bar.set_description(_short(path.name))

            def progress(stage: str, percent: int, base: int = base) -> None:
                bar.set_postfix_str(stage, refresh=False)
                bar.n = base + percent
                bar.refresh()

            try:
                with path.open("rb") as handle:
                    result = document_create(
                        kb=knowledge_base, filename=path.name, content=handle, enqueue=False
                    )
            except OSError as exc:
                failures += 1
                bar.write(f"FAILED     {path}: cannot read file ({exc.strerror})")
                continue
            document = result.document
            if (
                document.status == DocumentStatus.QUEUED
                or document.status == DocumentStatus.PROCESSING
            ):
                if tools is None:
                    from ingest.services import ingest_tools

                    bar.set_postfix_str("loading model")
                    tools = ingest_tools()
                document = _process(document, owner, tools, progress)
            elif not result.created and document.status == DocumentStatus.READY:
                bar.write(f"unchanged  {path} (already in '{knowledge_base.name}')")
                bar.n = base + 100
                continue
            bar.n = base + 100
            bar.refresh()
            if document.status == DocumentStatus.READY:
                pages = f"{document.page_count} pages, " if document.page_count else ""
                bar.write(f"ready      {path} ({pages}{document.chunk_count} chunks)")
            else:
                failures += 1
                bar.write(f"FAILED     {path}: {document.error}")
        bar.close()
        done = len(files) - failures
        self.stdout.write(
            f"{done} of {len(files)} file(s) ready in '{knowledge_base.name}', {failures} failed."
        )
        if failures:
            sys.exit(1)


def _process(document: Document, owner: str, tools, progress) -> Document:
    from ingest.services import document_ingest

    result = document_ingest(
        document_id=document.pk, owner=owner, tools=tools, on_progress=progress
    )
    if result is not None:
        return result
    # The app's worker has it: follow its progress until it is done.
    while True:
        document.refresh_from_db()
        if document.status in {DocumentStatus.READY, DocumentStatus.FAILED}:
            return document
        progress(document.stage, document.progress)
        time.sleep(0.5)


def _collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    return files


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"

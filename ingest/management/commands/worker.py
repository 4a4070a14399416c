"""`manage.py worker`: the background process that ingests queued documents."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection, connections

from ingest.management.database import database_prepare

logger = logging.getLogger("docent.worker")


class Command(BaseCommand):
    help = "Run the ingest worker: takes queued documents off the task queue and indexes them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="Queue poll interval (s)")
        parser.add_argument(
            "--batch", action="store_true", help="Process what is queued, then exit"
        )
        parser.add_argument(
            "--queues",
            default="small,default",
            help='Lanes to take work from, comma-separated: "small,default" (both, small '
            'ones first) or "small" (only uploads under INGEST_SMALL_BYTES)',
        )

        parser.add_argument(
            "--nice",
            type=int,
            default=0,
            help="Lower this worker's CPU priority by N (0-19): `serve` gives the worker "
            "that takes long documents 10, so the small lane gets the CPU first",
        )

    def handle(
        self, *args, interval: float, batch: bool, queues: str, nice: int, **options
    ) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        from ingest.models import KnowledgeBase
        from ingest.pipeline.sandbox import sandbox_warm_up
        from ingest.services import documents_recover, ingest_tools, worker_identity
        from ingest.services.embedders import kb_embedder_note, kbs_embedders

        lanes = [name.strip() for name in queues.split(",") if name.strip()]
        unknown = set(lanes) - set(settings.TASKS["default"]["QUEUES"])
        if not lanes or unknown:
            raise CommandError(f"Unknown lanes {sorted(unknown)}; use small and/or default.")
        if nice:
            os.nice(max(0, min(19, nice)))  # inherited by the extraction sandbox too
        database_prepare(stdout=self.stdout)
        logging.getLogger("docent").setLevel(settings.LOG_LEVEL)
        owner = worker_identity()
        tools = ingest_tools()  # load the model and reach Chroma before taking work
        for embedder in [tools.embedder, *kbs_embedders()]:
            embedder.encode(["warm up"])
        sandbox_warm_up()
        recovered = documents_recover(store=tools.store)
        if recovered:
            self.stdout.write(f"Recovered {len(recovered)} interrupted document(s): {recovered}")
        for kb in KnowledgeBase.objects.exclude(embedder__in=("", tools.embedder.name)):
            self.stderr.write(kb_embedder_note(kb=kb))
        self.stdout.write(
            f"Worker {owner} ready (model {tools.embedder.name}, lanes {','.join(lanes)}).",
            ending="\n",
        )
        self.stdout.flush()

        stop = threading.Event()
        sweeper = threading.Thread(
            target=_sweep, args=(stop, tools.store), daemon=True, name="recovery-sweep"
        )
        sweeper.start()
        if settings.SYNC_FOLDER_ROOTS:
            syncer = threading.Thread(
                target=_sync_folders, args=(stop, tools.store), daemon=True, name="folder-sync"
            )
            syncer.start()
        worker = Worker(
            queue_names=lanes,
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=hashlib.sha1(owner.encode()).hexdigest()[:32],  # noqa: S324
            excluded_queue_names=[],
        )
        worker.configure_signals()
        pause, last_error = 0.5, 0.0
        try:
            while worker.running:
                try:
                    worker.run()
                except OperationalError as exc:
                    # The queue's poll runs outside its own error handling: a database that
                    # is locked or briefly unreachable must not take the worker down.
                    if time.monotonic() - last_error > 60:
                        pause = 0.5  # a new outage starts with short waits again
                    last_error = time.monotonic()
                    logger.warning("Database unavailable (%s); retrying in %.1f s", exc, pause)
                    connections.close_all()
                    time.sleep(pause)
                    pause = min(pause * 2, 30)
                else:
                    break
        finally:
            stop.set()


def _sync_folders(stop: threading.Event, store) -> None:
    """Mirror the knowledge bases' synced folders (KnowledgeBase.sync_folder) when due."""
    from ingest.sync import kbs_sync_due

    try:
        while True:
            try:
                kbs_sync_due(store=store)
            except Exception:
                logger.exception("Folder sync failed")
            if stop.wait(min(settings.SYNC_INTERVAL_SECONDS, 30)):
                return
    finally:
        connection.close()


def _sweep(stop: threading.Event, store) -> None:
    """Every half lease, re-queue documents whose worker died (on any machine)."""
    from ingest.services import documents_recover

    try:
        while not stop.wait(settings.WORKER_LEASE_SECONDS / 2):
            try:
                acted = documents_recover(store=store)
                if acted:
                    logger.warning("Recovered documents %s", acted)
            except Exception:
                logger.exception("Recovery sweep failed")
    finally:
        connection.close()

"""Folder sync: a knowledge base mirrors a folder, by each file's path and content hash.

A file not seen before is uploaded; a file whose bytes changed replaces its document (the
new one is queued, then the old one is deleted); a document whose file is gone is
deleted. Documents remember their file as `Document.source` (its absolute path), so
documents uploaded by other means are never touched.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import Document, DocumentStatus, KnowledgeBase
from .pipeline.types import IngestError
from .services import document_create, document_delete
from .store import VectorStore

HASH_CHUNK = 1024 * 1024  # bytes read at a time while hashing
logger = logging.getLogger("docent.ingest")


@dataclass(frozen=True)
class SyncPlan:
    root: Path
    new: list[Path] = field(default_factory=list)
    changed: list[tuple[Path, Document]] = field(default_factory=list)
    removed: list[Document] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.removed)


@dataclass
class SyncReport:
    uploaded: list[str] = field(default_factory=list)  # relative paths
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _wanted(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    if name.startswith(".") or "/." in "/" + relative:
        return False  # hidden files and folders (.git, .DS_Store): never documents
    matches = lambda patterns: any(  # noqa: E731
        fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns
    )
    return (not include or matches(include)) and not matches(exclude)


def folder_files(
    root: Path, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Path]:
    """The folder's files that sync looks at: patterns match the path relative to `root`
    or the file name (`*.pdf`, `manuals/*`); hidden files never count."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and _wanted(path.relative_to(root).as_posix(), include, exclude)
    )


def folder_plan(
    *, kb: KnowledgeBase, root: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> SyncPlan:
    """What a sync of `root` into `kb` would do; changes nothing."""
    root = root.resolve()
    if not root.is_dir():
        raise IngestError(f"{root} is not a folder.")
    prefix = str(root) + "/"
    synced = {d.source: d for d in kb.documents.filter(source__startswith=prefix)}
    new: list[Path] = []
    changed: list[tuple[Path, Document]] = []
    seen: set[str] = set()
    for path in folder_files(root, include=include, exclude=exclude):
        seen.add(str(path))
        document = synced.get(str(path))
        if document is None:
            new.append(path)
        elif document.sha256 != _sha256(path):
            changed.append((path, document))
    # A file left out by the patterns is not "removed": only files that are gone are.
    removed = [
        d for source, d in synced.items() if source not in seen and not Path(source).exists()
    ]
    unchanged = len(seen) - len(new) - len(changed)
    return SyncPlan(root, new, changed, removed, unchanged)


def folder_sync(
    *,
    kb: KnowledgeBase,
    plan: SyncPlan,
    store: VectorStore,
    said: Callable[[str], None] = lambda line: None,
) -> SyncReport:
    """Carry out a plan: uploads are queued for the worker; `said` hears one line per file."""
    report = SyncReport()
    relative = lambda path: Path(path).relative_to(plan.root).as_posix()  # noqa: E731
    for path in plan.new:
        if _upload(kb, path, relative(path), report, said, verb="queued"):
            report.uploaded.append(relative(path))
    for path, old in plan.changed:
        if _upload(kb, path, relative(path), report, said, verb="updated"):
            report.replaced.append(relative(path))
            document_delete(document=old, store=store)
    for document in plan.removed:
        document_delete(document=document, store=store)
        report.deleted.append(relative(document.source))
        said(f"deleted  {relative(document.source)}")
    return report


def _upload(
    kb: KnowledgeBase,
    path: Path,
    name: str,
    report: SyncReport,
    said: Callable[[str], None],
    *,
    verb: str,
) -> Document | None:
    """Upload one file and mark it as synced from `path`; None (and why, in the report)
    when it can't be read or its bytes are another synced file's."""
    try:
        with path.open("rb") as handle:
            result = document_create(kb=kb, filename=path.name, content=handle)
    except OSError as exc:
        report.skipped.append((name, f"could not be read: {exc.strerror or exc}"))
        said(f"skipped  {name}: could not be read")
        return None
    document = result.document
    if not result.created and document.source and document.source != str(path):
        why = f"the same bytes as {Path(document.source).name}, already in the knowledge base"
        report.skipped.append((name, why))
        said(f"skipped  {name}: {why}")
        return None
    Document.objects.filter(pk=document.pk).update(source=str(path))
    if document.status == DocumentStatus.FAILED:  # refused on arrival, with its reason
        said(f"refused  {name}: {document.error}")
    else:
        said(f"{verb:8} {name}")
    return document


def kbs_sync_due(*, store: VectorStore) -> dict[str, SyncReport]:
    """Sync every knowledge base whose folder (KnowledgeBase.sync_folder) is due: not
    checked for SYNC_INTERVAL_SECONDS. Each is claimed with one conditional UPDATE, so of
    several workers exactly one syncs it. Returns {knowledge base name: report}."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SYNC_INTERVAL_SECONDS)
    due = Q(sync_checked_at__isnull=True) | Q(sync_checked_at__lt=cutoff)
    done: dict[str, SyncReport] = {}
    for kb in KnowledgeBase.objects.exclude(sync_folder="").filter(due):
        if not KnowledgeBase.objects.filter(pk=kb.pk).filter(due).update(sync_checked_at=now):
            continue  # another worker took it
        try:
            plan = folder_plan(kb=kb, root=Path(kb.sync_folder))
        except IngestError as exc:
            logger.warning("Knowledge base %s: its synced folder: %s", kb.name, exc)
            continue
        if plan:
            done[kb.name] = folder_sync(kb=kb, plan=plan, store=store)
            logger.info("Knowledge base %s synced from %s: %s", kb.name, plan.root, plan.summary())
    return done

"""manage.py sync: a knowledge base mirrors a folder (new, changed, removed), and --watch."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from ingest.models import Document
from tests.conftest import manage

pytestmark = pytest.mark.django_db(transaction=True)


def sync(folder, *options: str) -> str:
    out = StringIO()
    call_command("sync", str(folder), "--kb", "Synced", *options, stdout=out)
    return out.getvalue()


def synced() -> dict[str, str]:
    return {d.source.rsplit("/", 1)[-1]: d.sha256 for d in Document.objects.exclude(source="")}


def test_new_changed_and_removed_files_between_two_runs(tmp_path, store):
    folder = tmp_path / "docs"
    (folder / "guides").mkdir(parents=True)
    (folder / "a.md").write_text("# A\n\nFirst version.")
    (folder / "guides" / "b.md").write_text("# B\n\nStays the same.")
    (folder / "c.txt").write_text("Will be removed.")
    (folder / ".hidden.md").write_text("never synced")

    dry = sync(folder, "--dry-run")
    assert "3 new, 0 changed, 0 removed, 0 unchanged" in dry
    assert not Document.objects.exists()  # a dry run changes nothing

    first = sync(folder)
    assert "3 new, 0 changed, 0 removed, 0 unchanged" in first and "queued   guides/b.md" in first
    before = synced()
    assert set(before) == {"a.md", "b.md", "c.txt"}

    (folder / "a.md").write_text("# A\n\nSecond version, longer.")
    (folder / "c.txt").unlink()
    (folder / "d.md").write_text("# D\n\nNew.")
    second = sync(folder)
    assert "1 new, 1 changed, 1 removed, 1 unchanged" in second
    after = synced()
    assert set(after) == {"a.md", "b.md", "d.md"}
    assert after["a.md"] != before["a.md"] and after["b.md"] == before["b.md"]
    assert Document.objects.count() == 3  # the old a.md went with its replacement's arrival

    assert "0 new, 0 changed, 0 removed, 3 unchanged" in sync(folder)
    staff = Client()
    staff.force_login(
        get_user_model().objects.create_user("s", password="pw-s-123456", is_staff=True)
    )
    page = staff.get(f"/documents/{Document.objects.get(filename='b.md').pk}/")
    assert f"Synced from <code>{folder / 'guides' / 'b.md'}</code>" in page.content.decode()


def test_include_and_exclude_patterns_and_files_left_out_are_not_deleted(tmp_path, store):
    folder = tmp_path / "docs"
    (folder / "drafts").mkdir(parents=True)
    (folder / "manual.md").write_text("# Manual\n\nText.")
    (folder / "notes.txt").write_text("Notes.")
    (folder / "drafts" / "wip.md").write_text("# WIP\n\nNot yet.")
    assert "1 new" in sync(folder, "--include", "*.md", "--exclude", "drafts/*")
    assert set(synced()) == {"manual.md"}
    assert "2 new, 0 changed, 0 removed, 1 unchanged" in sync(folder, "--dry-run")


def test_watch_picks_up_a_new_file_within_five_seconds(tmp_path, store):
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nHere from the start.")
    process = manage("sync", str(folder), "--kb", "Watched", "--watch")
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("Watching") or not line:
                break
        assert any("1 new" in line for line in lines), "".join(lines)
        (folder / "later.md").write_text("# Later\n\nAdded while watching.")
        started = time.monotonic()
        while time.monotonic() - started < 5:
            if Document.objects.filter(source=str((folder / "later.md").resolve())).exists():
                break
            time.sleep(0.1)
        else:
            process.terminate()
            rest = process.stdout.read()
            pytest.fail("the new file was not picked up within 5 s:\n" + "".join(lines) + rest)
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=10)  # also closes its output pipe


def test_a_synced_folder_must_be_inside_the_roots_the_operator_allows(tmp_path, settings):
    from ingest.services import kb_get_or_create, kb_update

    kb = kb_get_or_create(name="Settings")
    allowed = tmp_path / "shared-docs"
    (allowed / "team").mkdir(parents=True)
    with pytest.raises(ValueError, match="Folder sync from the settings is off"):
        kb_update(kb=kb, sync_folder=str(allowed))
    settings.SYNC_FOLDER_ROOTS = [str(allowed)]
    for bad, says in (
        ("/etc", "outside SYNC_FOLDER_ROOTS"),
        ("team", "absolute path"),
        (str(allowed / "team" / ".." / ".."), "outside SYNC_FOLDER_ROOTS"),
        (str(allowed / "missing"), "is not a folder"),
    ):
        with pytest.raises(ValueError, match=says):
            kb_update(kb=kb, sync_folder=bad)
    assert kb_update(kb=kb, sync_folder=str(allowed / "team")).sync_folder == str(allowed / "team")


def test_due_folders_are_synced_once_per_interval(tmp_path, settings, store):
    from ingest.models import KnowledgeBase
    from ingest.services import kb_get_or_create
    from ingest.sync import kbs_sync_due

    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nFirst file.")
    settings.SYNC_FOLDER_ROOTS = [str(tmp_path)]
    kb = kb_get_or_create(name="Team")
    KnowledgeBase.objects.filter(pk=kb.pk).update(sync_folder=str(folder))
    assert kbs_sync_due(store=store)["Team"].uploaded == ["one.md"]
    (folder / "two.md").write_text("# Two\n\nSecond file.")
    assert kbs_sync_due(store=store) == {}  # checked just now: not due yet
    KnowledgeBase.objects.filter(pk=kb.pk).update(sync_checked_at=None)
    (folder / "one.md").unlink()
    report = kbs_sync_due(store=store)["Team"]
    assert report.uploaded == ["two.md"] and report.deleted == ["one.md"]


def test_the_worker_keeps_a_knowledge_base_in_step_with_its_folder(tmp_path, worker_factory):
    from ingest.models import KnowledgeBase
    from ingest.services import kb_get_or_create
    from tests.conftest import wait_for_document

    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "guide.md").write_text("# Guide\n\nThe worker found this file by itself.")
    kb = kb_get_or_create(name="Worker sync")
    KnowledgeBase.objects.filter(pk=kb.pk).update(sync_folder=str(folder))
    worker_factory(SYNC_FOLDER_ROOTS=str(tmp_path), SYNC_INTERVAL_SECONDS="5")
    deadline = time.monotonic() + 120
    while not Document.objects.filter(kb=kb).exists():
        assert time.monotonic() < deadline, "the worker never synced the folder"
        time.sleep(0.2)
    document = wait_for_document(Document.objects.get(kb=kb).pk)
    assert document.status == "ready" and document.source == str(folder / "guide.md")

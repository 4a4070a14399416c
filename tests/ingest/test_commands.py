"""`manage.py ingest`: progress bar, one line per file, exit code, same stores as the app."""

from __future__ import annotations

import subprocess

import pytest

from ingest.models import Chunk, Document
from tests import factories
from tests.conftest import manage_run, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def ingest(*args: str) -> subprocess.CompletedProcess:
    return manage_run("ingest", *args)


def test_folder_ingest_reports_each_file_and_fails_on_any_failure(tmp_path, store):
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.md").write_text("# A\n\nAlpha content about llamas.")
    (folder / "nested" / "b.pdf").write_bytes(
        factories.text_pdf(["Beta page one", "Beta page two"])
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    (folder / ".hidden.md").write_text("skipped")
    result = ingest(str(folder), "--kb", "Handbook")
    assert result.returncode == 1
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    assert any(line.startswith("ready") and line.endswith("a.md (1 chunks)") for line in lines)
    assert any(line.startswith("ready") and "b.pdf (2 pages" in line for line in lines)
    assert any(
        line.startswith("FAILED") and "broken.pdf" in line and "damaged" in line for line in lines
    )
    assert "%|" in result.stderr  # the progress bar
    assert "2 of 3 file(s) ready in 'Handbook', 1 failed." in result.stdout
    assert Document.objects.filter(kb__name="Handbook").count() == 3
    kb = Document.objects.first().kb
    rows = set(Chunk.objects.filter(kb=kb).values_list("vector_id", flat=True))
    assert store.ids(collection=kb.collection_name) == rows  # same Chroma as the app

    (folder / "broken.pdf").unlink()
    again = ingest(str(folder), "--kb", "Handbook")
    assert again.returncode == 0
    assert again.stdout.count("unchanged") == 2  # result lines on stdout, the bar on stderr


def test_missing_path_is_an_error(tmp_path):
    result = ingest(str(tmp_path / "nope"), "--kb", "X")
    assert result.returncode != 0 and "no such file or folder" in result.stderr


def test_ingest_works_on_a_fresh_data_dir_without_migrating_first(tmp_path):
    """A new user can ingest before ever running the app: the SQLite database is set up."""
    (tmp_path / "faq.md").write_text("# Returns\n\nReturns are accepted within 30 days.")
    env = {k: v for k, v in subprocess_env().items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="assistant.settings", DATA_DIR=str(tmp_path / "data"))
    result = manage_run("ingest", str(tmp_path / "faq.md"), "--kb", "Shop", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Preparing the database" in result.stdout
    assert "1 of 1 file(s) ready in 'Shop'" in result.stdout
    assert (tmp_path / "data" / "docent.sqlite3").exists()  # in its own DATA_DIR


def test_embedder_build_makes_the_int8_model_once(settings, capsys):
    from django.core.management import call_command

    settings.EMBEDDING_BACKEND = "onnx-int8"
    call_command("embedder_build")
    call_command("embedder_build")
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("Already built: ") and "/models/" in out[-1]
    assert out[-1].endswith(" MB).")
    built = list((settings.DATA_DIR / "models").glob("*/model.onnx"))
    assert len(built) == 1 and built[0].stat().st_size < 40_000_000

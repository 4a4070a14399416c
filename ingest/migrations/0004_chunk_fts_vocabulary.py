"""Per-term document counts of the SQLite full-text index (fts5vocab), read at query time
to leave out words so common that scoring their postings would dominate search time."""

from __future__ import annotations

from django.db import migrations


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            "CREATE VIRTUAL TABLE ingest_chunk_fts_vocab USING fts5vocab('ingest_chunk_fts', 'row')"
        )


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS ingest_chunk_fts_vocab")


class Migration(migrations.Migration):
    dependencies = [("ingest", "0003_kb_access_and_chat_settings")]
    operations = [migrations.RunPython(forward, backward)]

"""Full-text index over chunk text for lexical retrieval, kept in step by the database.

SQLite: an FTS5 table with Porter stemming, fed by triggers. PostgreSQL: a GIN index
on the tsvector of the same text. Either way, nothing is rebuilt at query time.
"""

from __future__ import annotations

from django.db import migrations

SQLITE_FORWARD = [
    """CREATE VIRTUAL TABLE ingest_chunk_fts USING fts5(
        heading, text, content='ingest_chunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER ingest_chunk_fts_ai AFTER INSERT ON ingest_chunk BEGIN
        INSERT INTO ingest_chunk_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text);
    END""",
    """CREATE TRIGGER ingest_chunk_fts_ad AFTER DELETE ON ingest_chunk BEGIN
        INSERT INTO ingest_chunk_fts(ingest_chunk_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
    END""",
    """CREATE TRIGGER ingest_chunk_fts_au AFTER UPDATE ON ingest_chunk BEGIN
        INSERT INTO ingest_chunk_fts(ingest_chunk_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
        INSERT INTO ingest_chunk_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text);
    END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS ingest_chunk_fts_au",
    "DROP TRIGGER IF EXISTS ingest_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS ingest_chunk_fts_ai",
    "DROP TABLE IF EXISTS ingest_chunk_fts",
]
POSTGRES_FORWARD = [
    """CREATE INDEX ingest_chunk_tsv ON ingest_chunk
       USING GIN (to_tsvector('english', heading || ' ' || text))""",
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS ingest_chunk_tsv"]


def forward(apps, schema_editor) -> None:
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def backward(apps, schema_editor) -> None:
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]

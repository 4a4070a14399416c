"""Getting the database ready before a command-line tool uses it.

The command-line tools work on a fresh checkout without `make run` first: on the
embedded SQLite database pending migrations are applied, as `make run` would. A shared
server database (PostgreSQL) is never migrated behind the operator's back; the tool stops
and says what to run.
"""

from __future__ import annotations

from typing import TextIO

from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def database_prepare(*, stdout: TextIO | OutputWrapper) -> None:
    """Apply pending migrations on SQLite; on other databases refuse to run with them pending."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return
    if connection.vendor != "sqlite":
        raise CommandError(
            f"The database has {len(plan)} unapplied migration(s). "
            "Run `python manage.py migrate` first."
        )
    stdout.write(f"Preparing the database ({len(plan)} migrations)...\n")
    call_command("migrate", interactive=False, verbosity=0)

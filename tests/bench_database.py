"""Each side of the streaming benchmark on a PostgreSQL database of its own, made and migrated by
its own checkout, and read here only in SQL: a checkout with other migrations has other models."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Side:
    """A checkout of Parley the benchmark serves, and the database its servers use."""

    app_dir: Path
    database_url: str


def prepare(side):
    """The side's database dropped, created anew and migrated by the side's own manage.py."""
    base, name = side.database_url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    # The same Python (its packages), the checkout's own code: its directory comes first on the path.
    # No system checks: a checkout made to be measured has no node_modules, and a page's scripts are
    # not what the benchmark loads.
    env = {**os.environ, "DATABASE_URL": side.database_url, "PYTHONPATH": str(side.app_dir)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"], cwd=side.app_dir, env=env, check=True)


def row_writes(side):
    """Rows inserted and updated so far in each of the side's tables, {table: (inserted, updated)}
    (PostgreSQL's own counters, read on a new connection: a session keeps a snapshot of them)."""
    with psycopg.connect(side.database_url) as connection:
        rows = connection.execute("SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables").fetchall()
    return {table: (inserted, updated) for table, inserted, updated in rows}


def count_rows(side, table):
    """How many rows the side's table holds."""
    with psycopg.connect(side.database_url) as connection:
        return connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def writes_between(before, after):
    """What each table wrote between two readings of row_writes, {table: {"inserted", "updated"}},
    the tables that wrote nothing left out."""
    grown = {}
    for table, (inserted, updated) in sorted(after.items()):
        old_inserted, old_updated = before.get(table, (0, 0))
        if inserted - old_inserted or updated - old_updated:
            grown[table] = {"inserted": inserted - old_inserted, "updated": updated - old_updated}
    return grown


def clear(side):
    """No messages left in the side's database (rooms' counters stay, as a live site's do)."""
    with psycopg.connect(side.database_url) as connection:
        connection.execute("DELETE FROM chat_message")


def replies(side):
    """The side's bot replies as rows, {room's bot key: {column: value}} (the benchmark's rooms each
    have a bot of their own name)."""
    with psycopg.connect(side.database_url, row_factory=dict_row) as connection:
        rows = connection.execute("SELECT * FROM chat_message WHERE role = 'assistant'").fetchall()
    return {row["bot"]: row for row in rows}

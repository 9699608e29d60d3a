"""sql/schema.sql: the schema that applying every migration to an empty database gives.

`ledger db schema` writes it from a throw-away embedded PostgreSQL (so it never depends on the
configured server), and tests/db/test_migrations.py fails when the migrations give anything else.
It is what the embedded wheel's pg_dump prints with --schema-only (tables, indexes, constraints,
functions, triggers, views; schema_version's rows are data, not schema), without what differs from
one run or one server to the next: pg_dump's version lines and the random key of its \\restrict
lines. Owners and privileges are left out too: they name whichever role ran the migrations.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from pathlib import Path

from ledger.db.embedded import EmbeddedPostgres, binaries_dir
from ledger.db.migrations import migrate_url, migrations_dir
from ledger.db.pool import psql_environment

HEADER = """\
-- The ledger's schema: every migration in sql/migrations applied to an empty database, as pg_dump
-- --schema-only prints it. Written by `ledger db schema`; never edited by hand (a test fails when
-- it and the migrations disagree): a change is a new migration, then `ledger db schema`.

"""
# pg_dump's lines that differ between runs (a random key) or between servers and pg_dump releases
# (versions), with the blank line after each.
VARYING = re.compile(
    r"^(?:\\(?:un)?restrict \S+\n|-- Dumped from database version .*\n|-- Dumped by pg_dump version .*\n)\n?",
    re.MULTILINE,
)
# Column options a server sets by itself, which no migration wrote: Debian's PostgreSQL 15.20 marks
# every column with a `pg_attver` option (15.18 did not), and pg_dump prints them as ALTER TABLE
# lines. They say which server release made the column, not what the schema is.
SERVER_COLUMN_OPTIONS = re.compile(r"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);\n", re.MULTILINE)


class SchemaError(RuntimeError):
    pass


def schema_path() -> Path:
    """sql/schema.sql, beside sql/migrations."""
    return migrations_dir().parent / "schema.sql"


def normalise(dump: str) -> str:
    return HEADER + SERVER_COLUMN_OPTIONS.sub("", VARYING.sub("", dump)).strip("\n") + "\n"


def dump_schema(url: str) -> str:
    """The schema of the database at `url` as sql/schema.sql holds it (pg_dump >= the server's)."""
    bare, env = psql_environment(url)
    result = subprocess.run(
        [str(binaries_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", "--dbname", bare],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise SchemaError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()}")
    return normalise(result.stdout)


def generate_schema() -> str:
    """Every migration applied to the empty database of a throw-away embedded server, dumped."""
    with (
        tempfile.TemporaryDirectory(prefix="ledger-schema-") as directory,
        EmbeddedPostgres(Path(directory), durable=False).running() as server,
    ):
        asyncio.run(migrate_url(server.url()))
        return dump_schema(server.url())

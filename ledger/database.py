"""Where the database is, and the asyncpg pool onto it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from ledger.embedded import EmbeddedPostgres
from ledger.settings import Settings


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one, running for the block."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with EmbeddedPostgres(settings.data_dir).running() as server:
        yield server.url()


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, command_timeout: float | None = 30.0
) -> asyncpg.Pool:
    # jit off: the ledger's statements are small and hot; JIT compilation only adds latency.
    # command_timeout: a statement stuck (on a lock, a sick server) fails the request instead of
    # hanging it; its transaction rolls back, so nothing is half-written.
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, command_timeout=command_timeout, server_settings={"jit": "off"}
    )
    assert pool is not None
    return pool

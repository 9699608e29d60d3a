"""Running one piece of async database work from a CLI command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ledger.db.pool import database_url
from ledger.settings import Settings


def with_connection(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """Connect to the configured (or embedded) database, run `work`, disconnect."""

    async def run(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    with database_url(settings) as url:
        return asyncio.run(run(url))

"""Running one piece of async database work from a CLI command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ledger.accounts.actor import Actor
from ledger.db.pool import database_url
from ledger.settings import Settings

CLI_OPERATOR = Actor("operator", None, "operator (ledger command)")


def with_connection(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """Connect to the configured (or embedded) database, run `work`, disconnect."""

    async def run(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            # every change this command makes is the operator's in the audit log (sql 0019)
            await conn.execute("SELECT set_config('ledger.actor', $1, false)", CLI_OPERATOR.as_json())
            return await work(conn)
        finally:
            await conn.close()

    with database_url(settings) as url:
        return asyncio.run(run(url))

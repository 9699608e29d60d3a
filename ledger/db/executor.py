"""What a wrapper needs of the database: an asyncpg pool or connection, or one connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# One connection, of a pool or not (a string: PoolConnectionProxy is not subscriptable at run time)
Connection: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[Any]"


class Executor(Protocol):
    """An asyncpg pool or connection: what a wrapper needs to call one function."""

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


@contextlib.asynccontextmanager
async def one_connection(
    db: asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy[Any],
) -> AsyncIterator[asyncpg.Connection | PoolConnectionProxy[Any]]:
    """A connection of the pool for the block, or the connection given: for work that needs one
    connection throughout (a transaction, a lock held until it ends)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db

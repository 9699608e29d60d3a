"""What a wrapper needs of the database: an asyncpg pool or connection."""

from __future__ import annotations

from typing import Any, Protocol


class Executor(Protocol):
    """An asyncpg pool or connection: what a wrapper needs to call one function."""

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...

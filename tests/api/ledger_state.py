"""What a test reads back from the ledger after a request: usage rows, holds, balances, the books."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any


async def usage_rows(pool: Any, user_id: Any) -> list[Any]:
    rows: list[Any] = await pool.fetch("SELECT * FROM llm_usage_log WHERE user_id = $1 ORDER BY id", user_id)
    return rows


async def wait_for_usage_row(pool: Any, user_id: Any, timeout: float = 10.0) -> Any:
    """The user's first usage row, once it is written (a stream's is written as it ends)."""
    for _ in range(int(timeout / 0.05)):
        if rows := await usage_rows(pool, user_id):
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no usage row was written")


async def hold_of(pool: Any, user_id: Any) -> Any:
    return await pool.fetchrow("SELECT * FROM credit_holds WHERE user_id = $1", user_id)


async def balance(pool: Any, user_id: Any) -> Decimal:
    value: Decimal = await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user_id)
    return value


async def assert_reconciled(pool: Any) -> None:
    assert [dict(r) for r in await pool.fetch("SELECT * FROM ledger_reconciliation")] == []

"""Operators' edits of the model prices (list, add, change, deactivate).

Rows are never deleted: a price that was billed stays for the record, and is_active retires it.
"""

from __future__ import annotations

from typing import Any

from ledger.db.edits import assignments, checked
from ledger.db.executor import Executor
from ledger.errors import InvalidArgument
from ledger.money.values import to_price

PRICE_FIELDS = {"input_usd_per_mtok", "output_usd_per_mtok", "context_window", "max_output_tokens", "is_active"}


async def list_prices(db: Executor, include_inactive: bool = False) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens,"
        " is_active FROM model_prices WHERE is_active OR $1 ORDER BY provider, model",
        include_inactive,
    )
    return [dict(r) for r in rows]


async def add_price(
    db: Executor,
    provider: str,
    model: str,
    input_usd_per_mtok: object,
    output_usd_per_mtok: object,
    context_window: int = 128000,
    max_output_tokens: int = 4096,
) -> dict[str, Any]:
    row = await checked(
        db.fetchrow(
            "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,"
            " max_output_tokens) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            provider,
            model,
            to_price(input_usd_per_mtok, "input_usd_per_mtok"),
            to_price(output_usd_per_mtok, "output_usd_per_mtok"),
            context_window,
            max_output_tokens,
        )
    )
    return dict(row)


async def change_price(db: Executor, provider: str, model: str, **changes: Any) -> dict[str, Any]:
    for money in ("input_usd_per_mtok", "output_usd_per_mtok"):
        if money in changes:
            changes[money] = to_price(changes[money], money)
    set_list, values = assignments(changes, PRICE_FIELDS, 3)
    row = await checked(
        db.fetchrow(
            f"UPDATE model_prices SET {set_list} WHERE provider = $1 AND model = $2 RETURNING *",  # noqa: S608
            provider,
            model,
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no price for {model} at {provider}")
    return dict(row)

"""Operators' edits of the model prices (list, add, change, deactivate).

Rows are never deleted: a price that was billed stays for the record, and is_active retires it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, cast

from ledger.db.edits import assignments, checked
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument
from ledger.money.values import to_price

PRICE_FIELDS = {"input_usd_per_mtok", "output_usd_per_mtok", "context_window", "max_output_tokens", "is_active"}
# An edit's SET list is built from PRICE_FIELDS, so this statement stays here (ledger/db/edits.py).
CHANGE_PRICE = "UPDATE model_prices SET {set_list} WHERE provider = $1 AND model = $2 RETURNING *"


class PriceListed(TypedDict):
    """sql/queries/list_model_prices.sql: a model's price at a provider, USD per 1M tokens."""

    provider: str
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    is_active: bool


class PriceRow(PriceListed):
    """A whole model_prices row, as an add or a change returns it."""

    created_at: datetime
    updated_at: datetime
    cache_read_usd_per_mtok: Decimal | None
    cache_write_usd_per_mtok: Decimal | None
    cache_write_1h_usd_per_mtok: Decimal | None
    input_audio_usd_per_mtok: Decimal | None
    cache_audio_read_usd_per_mtok: Decimal | None
    input_image_usd_per_mtok: Decimal | None
    cache_image_read_usd_per_mtok: Decimal | None
    reasoning_usd_per_mtok: Decimal | None
    output_audio_usd_per_mtok: Decimal | None
    output_image_usd_per_mtok: Decimal | None
    tiers: str
    synced_prices: str | None
    synced_from: str | None


async def list_prices(db: Executor, include_inactive: bool = False) -> list[PriceListed]:
    rows = await db.fetch(query("list_model_prices"), include_inactive)
    return [cast(PriceListed, dict(r)) for r in rows]


async def add_price(
    db: Executor,
    provider: str,
    model: str,
    input_usd_per_mtok: object,
    output_usd_per_mtok: object,
    context_window: int = 128000,
    max_output_tokens: int = 4096,
) -> PriceRow:
    row = await checked(
        db.fetchrow(
            query("insert_model_price"),
            provider,
            model,
            to_price(input_usd_per_mtok, "input_usd_per_mtok"),
            to_price(output_usd_per_mtok, "output_usd_per_mtok"),
            context_window,
            max_output_tokens,
        )
    )
    return cast(PriceRow, dict(row))


async def change_price(db: Executor, provider: str, model: str, **changes: Any) -> PriceRow:
    for money in ("input_usd_per_mtok", "output_usd_per_mtok"):
        if money in changes:
            changes[money] = to_price(changes[money], money)
    set_list, values = assignments(changes, PRICE_FIELDS, 3)
    row = await checked(
        db.fetchrow(
            CHANGE_PRICE.format(set_list=set_list),
            provider,
            model,
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no price for {model} at {provider}")
    return cast(PriceRow, dict(row))

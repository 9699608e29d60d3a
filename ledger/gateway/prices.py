"""Operators' edits of the model prices (list, add, change, deactivate).

Rows are never deleted: a price that was billed stays for the record, and is_active retires it.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, cast

from ledger.db.edits import assignments, checked
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument
from ledger.gateway.pricing import PRICE_COLUMNS, TOKEN_TYPES
from ledger.money.values import to_price

# the prices every row has; each other type's (NULL: priced as its parent) is optional
REQUIRED_PRICES = ("input_usd_per_mtok", "output_usd_per_mtok")
OPTIONAL_PRICES = tuple(c for c in PRICE_COLUMNS.values() if c not in REQUIRED_PRICES)
# the order the statements that write every price (insert_model_price, insert_synced_model_price,
# update_synced_model_price) take them in
PRICE_ORDER = (*REQUIRED_PRICES, *OPTIONAL_PRICES)
PRICE_FIELDS = {*PRICE_COLUMNS.values(), "tiers", "context_window", "max_output_tokens", "is_active"}
# An edit's SET list is built from PRICE_FIELDS, so this statement stays here (ledger/db/edits.py).
CHANGE_PRICE = "UPDATE model_prices SET {set_list} WHERE provider = $1 AND model = $2 RETURNING *"


class PriceListed(TypedDict):
    """sql/queries/list_model_prices.sql: a model's prices at a provider, USD per 1M tokens of each
    token type (None: priced as its parent), the tiers, and the catalog it was last synced from."""

    provider: str
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    is_active: bool
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
    synced_from: str | None


class PriceRow(TypedDict):
    """A whole model_prices row, as an add or a change returns it."""

    provider: str
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    is_active: bool
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


def to_tiers(value: object) -> str:
    """Tiers an operator gave (JSON text or its value): {"input": [{"above": 200000,
    "usd_per_mtok": "6"}], ...}, keyed by token type; as the JSON text model_prices.tiers holds."""
    try:
        raw = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise InvalidArgument(f"tiers must be JSON, got {str(value)[:60]!r}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument('tiers must be an object like {"input": [{"above": 200000, "usd_per_mtok": "6"}]}')
    tiers: dict[str, list[dict[str, Any]]] = {}
    for name, given in raw.items():
        if name not in TOKEN_TYPES:
            raise InvalidArgument(f"tiers: {name!r} is not a token type ({', '.join(TOKEN_TYPES)})")
        if not isinstance(given, list) or not all(
            isinstance(t, dict) and set(t) == {"above", "usd_per_mtok"} for t in given
        ):
            raise InvalidArgument(f'tiers: {name} must be a list of {{"above": TOKENS, "usd_per_mtok": PRICE}}')
        tiers[name] = []
        for tier in given:
            above = tier["above"]
            if isinstance(above, bool) or not isinstance(above, int) or not 0 <= above < 10**12:
                raise InvalidArgument(f"tiers: {name}'s above must be a whole number of tokens >= 0, got {above!r}")
            given_price = tier["usd_per_mtok"]
            # a JSON number arrives as a float; its shortest text is the number the operator wrote
            price = to_price(str(given_price) if type(given_price) is float else given_price, f"tiers: {name}'s price")
            tiers[name].append({"above": above, "usd_per_mtok": str(price)})
        tiers[name].sort(key=lambda t: int(t["above"]))
    return json.dumps(tiers)


def _checked_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """An add's or a change's values, each checked: prices as decimals (an optional one may be
    None: priced as its parent again), tiers as their JSON text."""
    checked_values = dict(changes)
    for name, value in changes.items():
        if name in REQUIRED_PRICES:
            checked_values[name] = to_price(value, name)
        elif name in OPTIONAL_PRICES:
            checked_values[name] = None if value is None else to_price(value, name)
        elif name == "tiers":
            checked_values[name] = to_tiers(value)
    return checked_values


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
    **prices: Any,
) -> PriceRow:
    """`prices`: any of OPTIONAL_PRICES and `tiers`."""
    unknown = set(prices) - {*OPTIONAL_PRICES, "tiers"}
    if unknown:
        raise InvalidArgument(f"unknown price {', '.join(sorted(unknown))}")
    values = _checked_changes(
        {"input_usd_per_mtok": input_usd_per_mtok, "output_usd_per_mtok": output_usd_per_mtok, "tiers": "{}", **prices}
    )
    row = await checked(
        db.fetchrow(
            query("insert_model_price"),
            provider,
            model,
            *(values.get(column) for column in PRICE_ORDER),
            values["tiers"],
            context_window,
            max_output_tokens,
        )
    )
    return cast(PriceRow, dict(row))


async def change_price(db: Executor, provider: str, model: str, **changes: Any) -> PriceRow:
    """Changes the named columns. A price changed here no longer equals what the last catalog sync
    wrote (synced_prices), so the sync keeps it from then on unless forced."""
    set_list, values = assignments(_checked_changes(changes), PRICE_FIELDS, 3)
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

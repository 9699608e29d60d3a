"""Operators' edits of the catalogues: credit packages and model prices (list, add, change, deactivate).

Rows are never deleted: a package or price that was sold or billed stays for the record, and
is_active takes it off sale.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from ledger.errors import InvalidArgument
from ledger.values import Executor, to_credits, to_uuid

PACKAGE_FIELDS = {
    "name",
    "credits",
    "price_usd",
    "discount_percentage",
    "description",
    "stripe_price_id",
    "sort_order",
    "is_active",
}
PRICE_FIELDS = {"input_usd_per_mtok", "output_usd_per_mtok", "context_window", "max_output_tokens", "is_active"}


def _price(value: object, what: str) -> Decimal:
    try:
        return to_credits(value, allow_zero=True)
    except Exception:
        raise InvalidArgument(f"{what} must be a decimal number >= 0 with at most 6 places, got {value!r}") from None


def _assignments(changes: dict[str, Any], allowed: set[str], first_param: int) -> tuple[str, list[Any]]:
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidArgument(f"cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(sorted(allowed))}")
    if not changes:
        raise InvalidArgument("nothing to change")
    names = sorted(changes)  # only names from `allowed` reach the SQL text
    sql = ", ".join(f"{name} = ${first_param + i}" for i, name in enumerate(names))
    return sql + ", updated_at = now()", [changes[name] for name in names]


async def _checked(call: Any) -> Any:
    try:
        return await call
    except asyncpg.UniqueViolationError:
        raise InvalidArgument("that name is taken") from None
    except asyncpg.CheckViolationError as exc:
        raise InvalidArgument(f"out of range: {exc.constraint_name}") from None
    except asyncpg.DataError as exc:  # numeric overflow: a price past numeric(12,2), a percentage past 999.99
        raise InvalidArgument(f"out of range: {exc}") from None


async def list_packages(db: Executor, include_inactive: bool = False) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT id, name, credits, price_usd, discount_percentage, description, stripe_price_id, sort_order,"
        " is_active FROM credit_packages WHERE is_active OR $1 ORDER BY sort_order, price_usd",
        include_inactive,
    )
    return [dict(r) for r in rows]


async def add_package(
    db: Executor,
    name: str,
    credits: object,
    price_usd: object,
    discount_percentage: object = 0,
    description: str | None = None,
) -> dict[str, Any]:
    row = await _checked(
        db.fetchrow(
            "INSERT INTO credit_packages (name, credits, price_usd, discount_percentage, description, sort_order)"
            " VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(sort_order), 0) + 1 FROM credit_packages))"
            " RETURNING *",
            name,
            to_credits(credits),
            _price(price_usd, "price_usd"),
            _price(discount_percentage, "discount_percentage"),
            description,
        )
    )
    return dict(row)


async def change_package(db: Executor, package_id: object, **changes: Any) -> dict[str, Any]:
    for money in ("credits", "price_usd", "discount_percentage"):
        if money in changes:
            changes[money] = _price(changes[money], money)
    assignments, values = _assignments(changes, PACKAGE_FIELDS, 2)
    row = await _checked(
        db.fetchrow(
            f"UPDATE credit_packages SET {assignments} WHERE id = $1 RETURNING *",  # noqa: S608 - names are whitelisted
            to_uuid(package_id, "package_id"),
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no credit package {package_id}")
    return dict(row)


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
    row = await _checked(
        db.fetchrow(
            "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,"
            " max_output_tokens) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            provider,
            model,
            _price(input_usd_per_mtok, "input_usd_per_mtok"),
            _price(output_usd_per_mtok, "output_usd_per_mtok"),
            context_window,
            max_output_tokens,
        )
    )
    return dict(row)


async def change_price(db: Executor, provider: str, model: str, **changes: Any) -> dict[str, Any]:
    for money in ("input_usd_per_mtok", "output_usd_per_mtok"):
        if money in changes:
            changes[money] = _price(changes[money], money)
    assignments, values = _assignments(changes, PRICE_FIELDS, 3)
    row = await _checked(
        db.fetchrow(
            f"UPDATE model_prices SET {assignments} WHERE provider = $1 AND model = $2 RETURNING *",  # noqa: S608
            provider,
            model,
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no price for {model} at {provider}")
    return dict(row)

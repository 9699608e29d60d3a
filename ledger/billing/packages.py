"""Operators' edits of the credit packages on sale (list, add, change, deactivate).

Rows are never deleted: a package that was sold stays for the record, and is_active takes it off sale.
"""

from __future__ import annotations

from typing import Any

from ledger.db.edits import assignments, checked
from ledger.db.executor import Executor
from ledger.errors import InvalidArgument
from ledger.money.values import to_credits, to_price, to_uuid

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
    row = await checked(
        db.fetchrow(
            "INSERT INTO credit_packages (name, credits, price_usd, discount_percentage, description, sort_order)"
            " VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(sort_order), 0) + 1 FROM credit_packages))"
            " RETURNING *",
            name,
            to_credits(credits),
            to_price(price_usd, "price_usd"),
            to_price(discount_percentage, "discount_percentage"),
            description,
        )
    )
    return dict(row)


async def change_package(db: Executor, package_id: object, **changes: Any) -> dict[str, Any]:
    for money in ("credits", "price_usd", "discount_percentage"):
        if money in changes:
            changes[money] = to_price(changes[money], money)
    set_list, values = assignments(changes, PACKAGE_FIELDS, 2)
    row = await checked(
        db.fetchrow(
            f"UPDATE credit_packages SET {set_list} WHERE id = $1 RETURNING *",  # noqa: S608 - names are whitelisted
            to_uuid(package_id, "package_id"),
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no credit package {package_id}")
    return dict(row)

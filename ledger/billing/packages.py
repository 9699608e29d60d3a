"""The credit packages: what users can buy, and operators' edits (list, add, change, deactivate).

Rows are never deleted: a package that was sold stays for the record, and is_active takes it off sale.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict, cast

from ledger.db.edits import assignments, checked
from ledger.db.executor import Executor
from ledger.db.queries import query
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
# An edit's SET list is built from PACKAGE_FIELDS, so this statement stays here (ledger/db/edits.py).
CHANGE_PACKAGE = "UPDATE credit_packages SET {set_list} WHERE id = $1 RETURNING *"


class PackageOnSale(TypedDict):
    """sql/queries/credit_packages_on_sale.sql: a package as users see it."""

    id: uuid.UUID
    name: str
    credits: Decimal
    price_usd: Decimal
    discount_percentage: Decimal
    description: str | None


async def packages_on_sale(db: Executor) -> list[PackageOnSale]:
    """The packages a user can buy, in shop order."""
    rows = await db.fetch(query("credit_packages_on_sale"))
    return [cast(PackageOnSale, dict(r)) for r in rows]


class PackageListed(PackageOnSale):
    """sql/queries/list_credit_packages.sql: a package as operators see it."""

    stripe_price_id: str | None
    sort_order: int
    is_active: bool


class PackageRow(PackageListed):
    """A whole credit_packages row, as an add or a change returns it."""

    created_at: datetime
    updated_at: datetime


async def list_packages(db: Executor, include_inactive: bool = False) -> list[PackageListed]:
    rows = await db.fetch(query("list_credit_packages"), include_inactive)
    return [cast(PackageListed, dict(r)) for r in rows]


async def add_package(
    db: Executor,
    name: str,
    credits: object,
    price_usd: object,
    discount_percentage: object = 0,
    description: str | None = None,
) -> PackageRow:
    row = await checked(
        db.fetchrow(
            query("insert_credit_package"),
            name,
            to_credits(credits),
            to_price(price_usd, "price_usd"),
            to_price(discount_percentage, "discount_percentage"),
            description,
        )
    )
    return cast(PackageRow, dict(row))


async def change_package(db: Executor, package_id: object, **changes: Any) -> PackageRow:
    for money in ("credits", "price_usd", "discount_percentage"):
        if money in changes:
            changes[money] = to_price(changes[money], money)
    set_list, values = assignments(changes, PACKAGE_FIELDS, 2)
    row = await checked(
        db.fetchrow(
            CHANGE_PACKAGE.format(set_list=set_list),
            to_uuid(package_id, "package_id"),
            *values,
        )
    )
    if row is None:
        raise InvalidArgument(f"no credit package {package_id}")
    return cast(PackageRow, dict(row))

"""Credit grants that expire, by priority (migration 0023): a bonus or an operator's positive
adjustment is a lot of its own, spent after the monthly allowance and before purchased credits,
lowest priority number first, then earliest expiry; what is left at its expiry leaves the balance
by an `expiry` transaction (run by maintenance). A refund takes back purchased credits only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypedDict, cast

import asyncpg

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import translate_errors
from ledger.money.values import to_credits, to_uuid

# credits.expiring is sent this long before a grant with credits left expires
EXPIRING_NOTICE = timedelta(days=7)


class Lot(TypedDict):
    user_id: uuid.UUID
    lot: str  # 'grant' or 'purchased'
    grant_id: int | None
    kind: str
    priority: int | None
    expires_at: datetime | None
    amount: Decimal | None
    remaining: Decimal


async def lots_of(db: Executor, user_id: uuid.UUID) -> list[Lot]:
    """The wallet's credits by lot, in spending order: grants with credits left (priority, then
    earliest expiry), then the purchased part."""
    return [cast(Lot, dict(row)) for row in await db.fetch(query("credit_lots_of_wallet"), user_id)]


async def expire_grants(db: Executor, batch: int = 1000) -> int:
    return cast(int, await db.fetchval("SELECT expire_credit_grants($1)", batch))


async def tell_expiring(db: Executor, within: timedelta = EXPIRING_NOTICE) -> int:
    return cast(int, await db.fetchval("SELECT tell_expiring_grants($1)", within))


async def grant(
    db: Executor,
    user_id: object,
    amount: object,
    transaction_type: str,
    reference: str | None,
    description: str | None,
    expires_at: datetime | None,
    priority: int | None,
) -> asyncpg.Record:
    """A bonus or positive admin_adjustment with its terms; replay-safe by reference."""
    with translate_errors():
        row: asyncpg.Record = await db.fetchrow(
            "SELECT * FROM grant_credits($1, $2, $3, $4, $5, $6, $7)",
            to_uuid(user_id, "user_id"),
            to_credits(amount),
            transaction_type,
            reference,
            expires_at,
            priority,
            description,
        )
    return row


class Grant(TypedDict):
    id: int
    kind: str
    amount: Decimal
    remaining: Decimal
    priority: int
    expires_at: datetime | None
    expired_at: datetime | None
    created_at: datetime


async def grants_of(db: Executor, user_id: uuid.UUID, limit: int = 100) -> list[Grant]:
    """Every grant of the wallet, open, spent or expired, newest first."""
    return [cast(Grant, dict(row)) for row in await db.fetch(query("credit_grants_of_wallet"), user_id, limit)]

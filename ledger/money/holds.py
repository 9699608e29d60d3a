"""Typed wrappers over the hold functions: credits reserved for requests in flight."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import translate_errors
from ledger.money.values import to_credits, to_uuid


@dataclass(frozen=True, slots=True)
class Reservation:
    success: bool
    hold_id: uuid.UUID | None
    # Spendable credits left after this hold (before it, when refused); None = unlimited.
    available: Decimal | None


@dataclass(frozen=True, slots=True)
class Settlement:
    success: bool
    new_balance: Decimal
    transaction_id: int | None
    charged: Decimal
    # What the request cost beyond what the account could pay.
    shortfall: Decimal


async def reserve_credits(
    db: Executor,
    user_id: object,
    amount: object,
    request_id: str,
    ttl: timedelta = timedelta(minutes=15),
    description: str | None = None,
) -> Reservation:
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM reserve_credits($1, $2, $3, $4, $5)",
            to_uuid(user_id, "user_id"),
            to_credits(amount),
            request_id,
            ttl,
            description,
        )
    return Reservation(row["success"], row["hold_id"], row["available"])


async def settle_credit_hold(
    db: Executor, hold_id: object, amount: object, description: str | None = None
) -> Settlement:
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM settle_credit_hold($1, $2, $3)",
            to_uuid(hold_id, "hold_id"),
            to_credits(amount, allow_zero=True),
            description,
        )
    return Settlement(row["success"], row["new_balance"], row["transaction_id"], row["charged"], row["shortfall"])


async def release_credit_hold(db: Executor, hold_id: object) -> Decimal:
    """Release a hold without charging; returns the credits given back (0 if already closed)."""
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM release_credit_hold($1)", to_uuid(hold_id, "hold_id"))
    released: Decimal = row["released"]  # RETURNS TABLE(success boolean, released numeric)
    return released


async def expire_credit_holds(db: Executor, max_users: int = 1000) -> int:
    """Return the credits of every hold past its expiry; the number of holds expired."""
    with translate_errors():
        expired: int = await db.fetchval("SELECT expire_credit_holds($1)", max_users)  # RETURNS integer
        return expired


async def hold_disputed_credits(
    db: Executor, user_id: object, credits: object, dispute_id: str
) -> tuple[uuid.UUID | None, Decimal]:
    """Hold up to `credits` of purchased balance while a dispute is open: (hold id, held)."""
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM hold_disputed_credits($1, $2, $3)",
            to_uuid(user_id, "user_id"),
            to_credits(credits),
            dispute_id,
        )
    return row["hold_id"], row["held"]


@dataclass(frozen=True, slots=True)
class OpenHolds:
    holds: int
    credits: Decimal  # held by them together


async def open_holds(db: Executor) -> OpenHolds:
    """How many holds are open and what they hold (the metrics' gauges)."""
    row = await db.fetchrow(query("open_holds_total"))
    return OpenHolds(row["holds"], row["held"])

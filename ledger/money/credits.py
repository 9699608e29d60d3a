"""Typed wrappers over the balance functions: add_user_credits, debit_user_credits, quota."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from ledger.db.executor import Connection, Executor, one_connection
from ledger.db.queries import query
from ledger.errors import IdempotencyConflict, InvalidAmount, translate_errors
from ledger.money import grants
from ledger.money.values import to_credits, to_uuid


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """What add_user_credits and debit_user_credits return."""

    success: bool
    new_balance: Decimal
    transaction_id: int | None


async def add_user_credits(
    db: Executor,
    user_id: object,
    amount: object,
    transaction_type: str,
    payment_intent_id: str | None = None,
    description: str | None = None,
) -> LedgerResult:
    """Add credits; idempotent on (transaction_type, payment_intent_id)."""
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM add_user_credits($1, $2, $3, $4, $5)",
            to_uuid(user_id, "user_id"),
            to_credits(amount),
            transaction_type,
            payment_intent_id,
            description,
        )
    return LedgerResult(row["success"], row["new_balance"], row["transaction_id"])


async def debit_user_credits(
    db: Executor,
    user_id: object,
    amount: object,
    transaction_type: str,
    request_id: str | None = None,
    description: str | None = None,
) -> LedgerResult:
    """Debit credits; success False (nothing written) when the account cannot afford it."""
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM debit_user_credits($1, $2, $3, $4, $5)",
            to_uuid(user_id, "user_id"),
            to_credits(amount),
            transaction_type,
            request_id,
            description,
        )
    return LedgerResult(row["success"], row["new_balance"], row["transaction_id"])


async def get_quota_usage_percentage(db: Executor, user_id: object) -> Decimal:
    with translate_errors():
        percentage: Decimal = await db.fetchval(
            "SELECT get_quota_usage_percentage($1)", to_uuid(user_id, "user_id")
        )  # RETURNS numeric
        return percentage


@dataclass(frozen=True, slots=True)
class RefundResult:
    new_balance: Decimal
    transaction_id: int | None
    refunded: Decimal
    # Credits the balance could not cover (already spent): recorded, never taken below zero.
    shortfall: Decimal


async def refund_purchased_credits(
    db: Executor, user_id: object, credits: object, reference: str, description: str | None = None
) -> RefundResult:
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM refund_purchased_credits($1, $2, $3, $4)",
            to_uuid(user_id, "user_id"),
            to_credits(credits),
            reference,
            description,
        )
    return RefundResult(row["new_balance"], row["transaction_id"], row["refunded"], row["shortfall"])


async def adjust_credits(
    db: asyncpg.Pool | Connection,
    user_id: object,
    amount: object,
    transaction_type: str,
    reference: str | None = None,
    description: str | None = None,
    *,
    expires_at: datetime | None = None,
    priority: int | None = None,
) -> LedgerResult:
    """An operator's grant: a bonus adds (a lot spent before purchased credits, with an optional
    expiry and priority: ledger/money/grants.py); an admin_adjustment adds or, when negative, removes
    (success False, nothing written, when the balance cannot cover the removal). One reference is
    one grant, whichever kind: the ledger keys replays by (type, reference), so the same reference
    sent again as the other kind (a form re-sent with its kind switched) is refused, under a lock
    on the reference so that two sent at once cannot both pass."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        # the sign is read from the text, so check the type first: a float's text would pass as a number
        raise InvalidAmount(f"amount must be a decimal number or a decimal string, got {type(amount).__name__}")
    terms = (expires_at, priority)
    if reference is None or transaction_type not in ("bonus", "admin_adjustment"):
        return await _grant(db, user_id, amount, transaction_type, reference, description, terms)
    async with one_connection(db) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('ledger grant ' || $1, 0))", reference)
        other = await conn.fetchval(query("grant_reference_of_other_kind"), reference, transaction_type)
        if other is not None:
            raise IdempotencyConflict(
                f"reference {reference!r} was already used for a {other}",
                hint="one reference is one grant; give this grant a reference of its own",
            )
        return await _grant(conn, user_id, amount, transaction_type, reference, description, terms)


async def _grant(
    db: Executor,
    user_id: object,
    amount: Decimal | int | str,
    transaction_type: str,
    reference: str | None,
    description: str | None,
    terms: tuple[datetime | None, int | None] = (None, None),
) -> LedgerResult:
    magnitude: object  # debit_user_credits checks it; mypy types abs(Decimal | int) as object
    if isinstance(amount, str):
        negative, magnitude = amount.startswith("-"), amount.removeprefix("-")
    else:
        negative, magnitude = amount < 0, abs(amount)
    if transaction_type == "admin_adjustment" and negative:
        if terms != (None, None):
            raise InvalidAmount("a removal has no expiry or priority: only a grant of credits does")
        return await debit_user_credits(db, user_id, magnitude, "admin_adjustment", reference, description)
    if terms != (None, None) and transaction_type in ("bonus", "admin_adjustment"):
        row = await grants.grant(db, user_id, amount, transaction_type, reference, description, *terms)
        return LedgerResult(row["success"], row["new_balance"], row["transaction_id"])
    # to_credits refuses what is left: a negative bonus, or text that is not a plain decimal
    return await add_user_credits(db, user_id, amount, transaction_type, reference, description)

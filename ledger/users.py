"""Accounts: creating them and reading what their owner may see."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.errors import UnknownUser, translate_errors
from ledger.values import Executor, to_uuid


async def create_user(
    db: Executor, email: str | None = None, tier: str = "trial", power_level: str = "balanced"
) -> dict[str, Any]:
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM create_ledger_user($1, $2, $3)", email, tier, power_level)
    return dict(row)


ACCOUNT = """
SELECT u.user_id, u.email, u.tier, u.power_level, u.balance, u.credits_held, u.monthly_allowance,
       CASE WHEN u.billing_cycle_start + interval '1 month' <= now() THEN 0
            ELSE u.credits_used_this_month END AS credits_used_this_month,
       u.billing_cycle_start, get_quota_usage_percentage(u.user_id) AS quota_usage_percentage
  FROM user_credits u WHERE u.user_id = $1
"""


async def get_account(db: Executor, user_id: object) -> dict[str, Any]:
    """Balance, allowance and its use this cycle, tier and power level."""
    with translate_errors():
        row = await db.fetchrow(ACCOUNT, to_uuid(user_id, "user_id"))
    if row is None:
        raise UnknownUser(f"unknown user {user_id}")
    account = dict(row)
    allowance = account["monthly_allowance"]
    account["allowance_remaining"] = (
        None if allowance is None else max(allowance - account["credits_used_this_month"], Decimal(0))
    )
    return account


async def set_user_tier(
    db: Executor, user_id: object, tier: str, cycle_start: datetime | None = None
) -> dict[str, Any]:
    """Tier and its allowance; with cycle_start, a new billing cycle starts then."""
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM set_user_tier($1, $2, $3)", to_uuid(user_id, "user_id"), tier, cycle_start
        )
    return dict(row)


async def set_power_level(db: Executor, user_id: object, power_level: str) -> dict[str, Any]:
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM set_user_power_level($1, $2)", to_uuid(user_id, "user_id"), power_level)
    return dict(row)


async def lock_account(db: Executor, user_id: object) -> None:
    """Lock the user's row for the rest of the transaction, as every ledger function does first;
    a caller that will also lock its own rows (a payment, a dispute) takes this lock before them,
    so locks are always taken in the same order and two transactions cannot deadlock."""
    with translate_errors():
        await db.fetchval("SELECT 1 FROM ledger_lock_user($1)", to_uuid(user_id, "user_id"))

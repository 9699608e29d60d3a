"""Accounts: creating them and reading what their owner may see."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.db.executor import Executor
from ledger.errors import UnknownUser, translate_errors
from ledger.money.values import to_uuid


async def create_user(
    db: Executor, email: str | None = None, tier: str = "trial", power_level: str = "balanced"
) -> dict[str, Any]:
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM create_ledger_user($1, $2, $3)", email, tier, power_level)
    return dict(row)


# The cycle fields come from ledger_user_cycle, the SQL definition every writer uses: a cycle that
# has ended but was not rolled yet reads as the new cycle with its full allowance, as the next
# writer will leave it.
ACCOUNT = """
SELECT u.user_id, u.email, u.tier, u.power_level, u.balance, u.credits_held, u.monthly_allowance,
       c.credits_used AS credits_used_this_month, c.cycle_start AS billing_cycle_start,
       get_quota_usage_percentage(u.user_id) AS quota_usage_percentage,
       c.allowance_remaining, c.cycle_end AS allowance_resets_at
  FROM user_credits u CROSS JOIN LATERAL ledger_user_cycle(u, now()) c
 WHERE u.user_id = $1
"""


async def get_account(db: Executor, user_id: object) -> dict[str, Any]:
    """Balance, allowance and its use this cycle (what is left, when it resets), tier and power level."""
    with translate_errors():
        row = await db.fetchrow(ACCOUNT, to_uuid(user_id, "user_id"))
    if row is None:
        raise UnknownUser(f"unknown user {user_id}")
    return dict(row)


async def set_user_tier(
    db: Executor, user_id: object, tier: str, cycle_start: datetime | None = None
) -> dict[str, Any]:
    """Tier and its allowance; with cycle_start newer than the current cycle's start, a new
    billing cycle anchored there (an older or equal one never moves the cycle or resets usage)."""
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

"""Accounts: creating them and reading what their owner may see."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypedDict, cast

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import UnknownUser, translate_errors
from ledger.money.values import to_uuid


class UserRow(TypedDict):
    """A user_credits row, as create_ledger_user, set_user_tier and set_user_power_level return it."""

    user_id: uuid.UUID
    email: str | None
    balance: Decimal
    tier: str
    power_level: str
    monthly_allowance: Decimal | None  # None: unlimited
    credits_used_this_month: Decimal
    credits_held: Decimal
    billing_cycle_start: datetime
    stripe_customer_id: str | None
    created_at: datetime
    updated_at: datetime
    billing_cycle_anchor: datetime
    stripe_customers_forgotten: int  # Stripe customers deleted in Stripe (ledger/billing/customers.py)
    low_balance_threshold: Decimal | None  # balance.low below it (ledger/notify/contacts.py)
    granted_remaining: Decimal  # the part of balance in grant lots (ledger/money/grants.py)
    auto_top_up_threshold: Decimal | None  # while auto top-up is on (ledger/billing/auto_top_up.py)


async def create_user(
    db: Executor, email: str | None = None, tier: str = "trial", power_level: str = "balanced"
) -> UserRow:
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM create_ledger_user($1, $2, $3)", email, tier, power_level)
    return cast(UserRow, dict(row))


async def create_self_service_wallet(db: Executor, email: str | None = None) -> UserRow:
    """A wallet a person makes for themselves: trial tier, no free allowance (sql 0020)."""
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM create_self_service_wallet($1)", email)
    return cast(UserRow, dict(row))


class Account(TypedDict):
    """sql/queries/account_by_user.sql: what the account's owner and operators see."""

    user_id: uuid.UUID
    email: str | None
    tier: str
    power_level: str
    balance: Decimal
    credits_held: Decimal
    monthly_allowance: Decimal | None  # None: unlimited
    credits_used_this_month: Decimal
    billing_cycle_start: datetime
    quota_usage_percentage: Decimal
    allowance_remaining: Decimal | None  # None: unlimited
    allowance_resets_at: datetime


async def get_account(db: Executor, user_id: object) -> Account:
    """Balance, allowance and its use this cycle (what is left, when it resets), tier and power level."""
    with translate_errors():
        row = await db.fetchrow(query("account_by_user"), to_uuid(user_id, "user_id"))
    if row is None:
        raise UnknownUser(f"unknown user {user_id}")
    return cast(Account, dict(row))


async def set_user_tier(db: Executor, user_id: object, tier: str, cycle_start: datetime | None = None) -> UserRow:
    """Tier and its allowance; with cycle_start newer than the current cycle's start, a new
    billing cycle anchored there (an older or equal one never moves the cycle or resets usage)."""
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM set_user_tier($1, $2, $3)", to_uuid(user_id, "user_id"), tier, cycle_start
        )
    return cast(UserRow, dict(row))


async def set_power_level(db: Executor, user_id: object, power_level: str) -> UserRow:
    with translate_errors():
        row = await db.fetchrow("SELECT * FROM set_user_power_level($1, $2)", to_uuid(user_id, "user_id"), power_level)
    return cast(UserRow, dict(row))


async def lock_account(db: Executor, user_id: object) -> None:
    """Lock the user's row for the rest of the transaction, as every ledger function does first;
    a caller that will also lock its own rows (a payment, a dispute) takes this lock before them,
    so locks are always taken in the same order and two transactions cannot deadlock."""
    with translate_errors():
        await db.fetchval("SELECT 1 FROM ledger_lock_user($1)", to_uuid(user_id, "user_id"))


class PowerLevelOffered(TypedDict):
    """sql/queries/power_levels_on_offer.sql."""

    power_level: str
    cost_multiplier: Decimal
    max_latency_ms: int
    description: str | None


async def power_levels_on_offer(db: Executor) -> list[PowerLevelOffered]:
    """The power levels a user may choose, cheapest first."""
    return [cast(PowerLevelOffered, dict(r)) for r in await db.fetch(query("power_levels_on_offer"))]

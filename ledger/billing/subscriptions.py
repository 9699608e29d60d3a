"""A user's subscription as their balance shows it, and the account as its owner sees it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypedDict, cast

from ledger.billing.events import PAID_STATUSES, TERMINAL
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.money.accounts import get_account


class SubscriptionShown(TypedDict):
    """sql/queries/current_subscription_of_user.sql."""

    id: str
    tier: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None


async def current_subscription(db: Executor, user_id: uuid.UUID) -> SubscriptionShown | None:
    """The subscription that gives the user their tier (one in a paid status on it), else the
    latest updated; None when they never had one."""
    row = await db.fetchrow(query("current_subscription_of_user"), user_id, PAID_STATUSES)
    return None if row is None else cast(SubscriptionShown, dict(row))


class LiveSubscription(TypedDict):
    """sql/queries/live_subscription_of_user.sql."""

    id: str
    tier: str
    status: str


async def live_subscription(db: Executor, user_id: uuid.UUID) -> LiveSubscription | None:
    """The user's newest subscription Stripe may still bill (any status but a final one), None
    when there is none."""
    row = await db.fetchrow(query("live_subscription_of_user"), user_id, TERMINAL)
    return None if row is None else cast(LiveSubscription, dict(row))


class TierOnSale(TypedDict):
    """sql/queries/subscription_tiers_on_sale.sql."""

    tier: str
    display_name: str
    price_usd: Decimal
    monthly_allowance: Decimal | None  # None: unlimited
    description: str | None


async def tiers_on_sale(db: Executor) -> list[TierOnSale]:
    """The paid tiers a user can subscribe to, cheapest first."""
    return [cast(TierOnSale, dict(r)) for r in await db.fetch(query("subscription_tiers_on_sale"))]


class OwnerAccount(TypedDict):
    """The account as its owner sees it (GET /v1/credits/balance, the dashboard): get_account's
    fields but the email, and the subscription that gives the tier."""

    user_id: uuid.UUID
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
    subscription: SubscriptionShown | None


async def owner_account(db: Executor, user_id: uuid.UUID) -> OwnerAccount:
    account = await get_account(db, user_id)
    shown = {name: value for name, value in account.items() if name != "email"}
    return cast(OwnerAccount, {**shown, "subscription": await current_subscription(db, user_id)})

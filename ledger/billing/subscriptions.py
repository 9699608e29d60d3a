"""A user's subscription as their balance shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypedDict, cast

from ledger.billing.events import PAID_STATUSES
from ledger.db.executor import Executor
from ledger.db.queries import query


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

"""Stripe customers deleted in Stripe: forgotten, so the next checkout creates a new one."""

from __future__ import annotations

import uuid

from ledger.db.executor import Executor
from ledger.db.queries import query


async def forget_customer(db: Executor, customer_id: str) -> uuid.UUID | None:
    """Forgets a Stripe customer deleted in Stripe: the account that holds it, if any, gets a new
    one at its next checkout (under a new idempotency key). Returns that account."""
    user_id = await db.fetchval(query("forget_stripe_customer"), customer_id)
    return None if user_id is None else uuid.UUID(str(user_id))

"""A workspace's notification settings: the low-balance threshold (what is left to spend,
allowance included, below which balance.low is sent and its money contacts emailed, once per
crossing) and its billing contacts (members emailed about money beside the owners). Changes run
in the caller's `acting` transaction: audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument
from ledger.money.values import AMOUNT_TEXT

MOST_CREDITS = Decimal("1e12")


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    low_balance_threshold: Decimal | None
    spendable: Decimal | None  # None: no limit (an unlimited allowance)
    billing_contacts: list[uuid.UUID]


def threshold_of(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        if not AMOUNT_TEXT.fullmatch(str(value).strip()):  # Decimal() alone reads "1_000", "٣", "1e3"
            raise ValueError(value)
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidArgument(
            'low_balance_threshold must be a number of credits, as a string: "5".', param="low_balance_threshold"
        ) from None
    if not amount.is_finite() or amount <= 0 or amount >= MOST_CREDITS or amount != amount.quantize(Decimal("1e-6")):
        raise InvalidArgument(
            "low_balance_threshold must be above 0 and below 10^12 credits, at most 6 decimals; null is off.",
            param="low_balance_threshold",
        )
    return amount


async def settings_of(db: Executor, workspace_id: uuid.UUID) -> NotificationSettings:
    row = await db.fetchrow(query("notification_settings_of"), workspace_id)
    if row is None:
        return NotificationSettings(None, None, [])
    return NotificationSettings(row["low_balance_threshold"], row["spendable"], list(row["billing_contacts"]))


async def set_low_balance_threshold(db: Executor, workspace_id: uuid.UUID, value: object) -> None:
    """Sets (None: turns off) the threshold. Set above what is left, balance.low is sent at once:
    the crossing happened before the threshold existed, and the owner should hear of it."""
    threshold = threshold_of(value)
    spendable = await db.fetchval(query("set_low_balance_threshold"), workspace_id, threshold)
    if threshold is not None and spendable is not None and spendable < threshold:
        data = {"spendable": str(spendable), "threshold": str(threshold), "on_setting": True}
        await db.fetchval("SELECT ledger_emit($1, 'balance.low', $2::jsonb)", workspace_id, json.dumps(data))


async def set_billing_contacts(db: Executor, workspace_id: uuid.UUID, members: Sequence[uuid.UUID]) -> None:
    """Exactly these members become the billing contacts; an id that is no member is refused."""
    wanted = list(dict.fromkeys(members))
    found = {row["user_id"] for row in await db.fetch(query("members_among"), workspace_id, wanted)}
    strangers = [str(m) for m in wanted if m not in found]
    if strangers:
        raise InvalidArgument(
            f"billing_contacts must be members of this organization; not members: {', '.join(strangers[:5])}.",
            param="billing_contacts",
        )
    await db.fetch(query("set_billing_contacts"), workspace_id, wanted)

"""Changing a paid subscription's tier: its one Stripe item moves to the new tier's price.

Nothing here writes the ledger. Stripe answers the change with customer.subscription.updated, and
that signed webhook (events.subscription_changed) is what sets the user's tier and allowance, as
checkout.session.completed is what credits a purchase: one source of truth, whatever this call's
answer said or whether it arrived at all.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypedDict

import asyncpg
import stripe
from stripe.params import SubscriptionUpdateParams, SubscriptionUpdateParamsItem

from ledger.billing.checkout import CURRENCY, PAID_TIERS, StripeReplyInvalid, redact_keys, to_cents
from ledger.billing.events import PAID_STATUSES
from ledger.billing.subscriptions import current_subscription
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument, LedgerError
from ledger.money.values import to_uuid

_SUBSCRIPTION_ID = re.compile(r"sub_[A-Za-z0-9_]{1,250}", re.ASCII)
_ITEM_ID = re.compile(r"si_[A-Za-z0-9_]{1,250}", re.ASCII)
_PRODUCT_ID = re.compile(r"prod_[A-Za-z0-9_]{1,250}", re.ASCII)
_PRICE_ID = re.compile(r"price_[A-Za-z0-9_]{1,250}", re.ASCII)


class NoSubscription(LedgerError):
    http_status = 409
    code = "no_subscription"


class SameTier(LedgerError):
    http_status = 409
    code = "same_tier"


class TierChange(TypedDict):
    id: str  # the Stripe subscription
    tier: str  # asked for; the ledger's tier follows when Stripe's webhook arrives
    previous_tier: str  # the ledger's tier of the subscription now
    status: str  # always "pending_webhook"


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    if not isinstance(obj, dict):
        raise StripeReplyInvalid(f"Stripe answered a {type(obj).__name__}, not an object")
    return obj


def _id(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise StripeReplyInvalid(f"Stripe's {what} has no valid id: {redact_keys(str(value)[:80])!r}")
    return value


def _only_item(subscription: dict[str, Any], subscription_id: str) -> tuple[str, dict[str, Any]]:
    """The subscription's one item (this service sells subscriptions of one item) and its price."""
    if _id(subscription, _SUBSCRIPTION_ID, "subscription") != subscription_id:
        raise StripeReplyInvalid(f"Stripe answered another subscription than {subscription_id}")
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise StripeReplyInvalid(f"subscription {subscription_id} does not have exactly one item")
    price = data[0].get("price")
    if not isinstance(price, dict):
        raise StripeReplyInvalid(f"the item of subscription {subscription_id} has no price")
    _id(price, _PRICE_ID, "subscription item's price")
    _id(price.get("product"), _PRODUCT_ID, "subscription item's product")
    return _id(data[0], _ITEM_ID, "subscription item"), price


def _priced_as(price: dict[str, Any], on_sale: asyncpg.Record) -> bool:
    """Whether the item's price is the tier's: the operator's Stripe price, else a monthly price of
    the tier's amount in the catalog's currency."""
    if on_sale["stripe_price_id"]:
        return bool(price.get("id") == on_sale["stripe_price_id"])
    recurring = price.get("recurring")
    return (
        price.get("unit_amount") == to_cents(on_sale["price_usd"])
        and price.get("currency") == CURRENCY
        and isinstance(recurring, dict)
        and recurring.get("interval") == "month"
        and recurring.get("interval_count", 1) == 1
    )


async def change_tier(db: Executor, client: stripe.StripeClient, user_id: object, tier: str) -> TierChange:
    """Move the user's paid subscription to `tier`, prorated as Stripe does by default.

    Refused before anything is sent to Stripe: an unknown tier or one not on sale (InvalidArgument),
    no subscription in a paid status (NoSubscription: subscribe through the checkout instead), the
    tier it already has (SameTier). Stripe refusing raises stripe.StripeError; an answer that is not
    what its API returns raises StripeReplyInvalid.
    """
    owner: uuid.UUID = to_uuid(user_id, "user_id")
    if tier not in PAID_TIERS:
        raise InvalidArgument(f"tier must be one of {', '.join(PAID_TIERS)}, got {tier!r}", param="tier")
    on_sale = await db.fetchrow(query("subscription_tier_for_sale"), tier)
    if on_sale is None:
        raise InvalidArgument(f"tier {tier} is not on sale", param="tier")
    current = await current_subscription(db, owner)
    if current is None or current["status"] not in PAID_STATUSES:
        raise NoSubscription("You have no paid subscription to change: subscribe with POST /v1/subscriptions/checkout.")
    if current["tier"] == tier:
        raise SameTier(f"Your subscription is already {tier}.", param="tier")
    subscription_id = current["id"]
    found = _as_dict(await client.v1.subscriptions.retrieve_async(subscription_id))
    if found.get("status") not in PAID_STATUSES:
        # ended in Stripe, its webhook not here yet: there is nothing to change, only to subscribe to
        raise NoSubscription("You have no paid subscription to change: subscribe with POST /v1/subscriptions/checkout.")
    item_id, price = _only_item(found, subscription_id)
    change: TierChange = {
        "id": subscription_id,
        "tier": tier,
        "previous_tier": current["tier"],
        "status": "pending_webhook",
    }
    metadata = found.get("metadata")
    if isinstance(metadata, dict) and metadata.get("tier") == tier and _priced_as(price, on_sale):
        # asked twice before the webhook came (a double click): Stripe has it already, nothing to prorate
        return change
    item: SubscriptionUpdateParamsItem = {"id": item_id}
    if on_sale["stripe_price_id"]:
        item["price"] = on_sale["stripe_price_id"]
    else:
        item["price_data"] = {
            "currency": CURRENCY,
            "product": price["product"] if isinstance(price["product"], str) else price["product"]["id"],
            "unit_amount": to_cents(on_sale["price_usd"]),
            "recurring": {"interval": "month"},
        }
    params: SubscriptionUpdateParams = {
        "items": [item],
        # the webhook reads the tier from the price when it is the operator's, else from here
        "metadata": {"tier": tier},
        "proration_behavior": "create_prorations",
    }
    updated = _as_dict(await client.v1.subscriptions.update_async(subscription_id, params))
    _only_item(updated, subscription_id)
    return change

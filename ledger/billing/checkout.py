"""Stripe Checkout for credit packages and subscription tiers, through the stripe SDK.

Each session carries, in its metadata, what the webhook needs to credit the right user with the
right package (user_id, package_id, credits) or tier (user_id, tier); Stripe signs it back to us.
Amounts go to Stripe as integer cents.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import stripe
from stripe.params import CustomerCreateParams
from stripe.params.checkout import (
    SessionCreateParams,
    SessionCreateParamsLineItem,
    SessionCreateParamsLineItemPriceData,
)

from ledger.billing.customers import forget_customer
from ledger.billing.subscriptions import live_subscription
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import AlreadySubscribed, InvalidArgument, UnknownUser
from ledger.money.values import to_uuid
from ledger.settings import Settings

PAID_TIERS = ("starter", "professional", "enterprise")
CURRENCY = "usd"  # catalog prices are US dollars; the webhook checks Stripe charged in it
MAX_URL = 2048  # Stripe's checkout URLs are a few hundred characters; ours (success, cancel) too
_CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,250}", re.ASCII)
_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}", re.ASCII)
# what a Stripe API key looks like (also Stripe's masked form sk_live_****1234): never echoed or logged
_KEY_LIKE = re.compile(r"\b(?:sk|rk|pk|whsec)_[A-Za-z0-9_*]+")


class StripeReplyInvalid(Exception):
    """Stripe answered something that is not what its API returns: nothing of it is relayed."""


def redact_keys(text: str) -> str:
    return _KEY_LIKE.sub("[redacted]", text)


def web_url(value: object) -> str | None:
    """An http(s) URL with a host, of bounded length and without spaces or control characters;
    None when it is not one."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _stripe_id(obj: Any, pattern: re.Pattern[str], what: str) -> str:
    value = getattr(obj, "id", None)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise StripeReplyInvalid(f"Stripe's {what} has no valid id: {redact_keys(str(value)[:80])!r}")
    return value


def stripe_client(settings: Settings) -> stripe.StripeClient | None:
    if settings.stripe_secret_key is None:
        return None
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        http_client=stripe.HTTPXClient(),
        max_network_retries=2,
    )


def to_cents(usd: Decimal) -> int:
    cents = usd * 100
    if cents != cents.to_integral_value():
        raise InvalidArgument(f"price {usd} is not a whole number of cents")
    return int(cents)


async def ensure_customer(db: Executor, client: stripe.StripeClient, user_id: uuid.UUID) -> str:
    """The user's Stripe customer, created once and remembered.

    Two checkouts at once send the same idempotency key, so Stripe creates one customer for both.
    The key counts the user's customers deleted in Stripe (and so forgotten here): Stripe replays a
    key's first answer for a day, and the old key would name the deleted customer again.
    """
    row = await db.fetchrow(query("stripe_customer_of_user"), user_id)
    if row is None:
        raise UnknownUser(f"unknown user {user_id}")
    if row["stripe_customer_id"]:
        return str(row["stripe_customer_id"])
    params: CustomerCreateParams = {"metadata": {"user_id": str(user_id)}}
    if row["email"]:
        params["email"] = row["email"]
    generation = row["stripe_customers_forgotten"]
    idempotency_key = f"ledger-customer-{user_id}" + (f"-{generation}" if generation else "")
    customer = await client.v1.customers.create_async(params, {"idempotency_key": idempotency_key})
    customer_id = _stripe_id(customer, _CUSTOMER_ID, "new customer")
    try:
        stored = await db.fetchval(query("remember_stripe_customer"), user_id, customer_id)
    except asyncpg.UniqueViolationError:
        # stripe_customer_id is unique: a customer already someone else's is never shared
        raise StripeReplyInvalid(f"Stripe's new customer {customer_id} is another user's") from None
    return str(stored)


def _customer_is_gone(error: stripe.InvalidRequestError) -> bool:
    """Stripe's answer to a request naming a deleted customer (400, code resource_missing, param
    customer)."""
    return error.code == "resource_missing" and error.param == "customer"


def _line_item(
    stripe_price_id: str | None, price_usd: Decimal, name: str, *, monthly: bool
) -> SessionCreateParamsLineItem:
    """The operator's Stripe Price when set, else an inline price in cents."""
    if stripe_price_id:
        return {"price": stripe_price_id, "quantity": 1}
    price_data: SessionCreateParamsLineItemPriceData = {
        "currency": CURRENCY,
        "unit_amount": to_cents(price_usd),
        "product_data": {"name": name},
    }
    if monthly:
        price_data["recurring"] = {"interval": "month"}
    return {"quantity": 1, "price_data": price_data}


async def _session(
    db: Executor,
    client: stripe.StripeClient,
    owner: uuid.UUID,
    mode: str,
    line_item: SessionCreateParamsLineItem,
    metadata: dict[str, str],
    success_url: str,
    cancel_url: str,
) -> dict[str, str]:
    customer = await ensure_customer(db, client, owner)
    params: SessionCreateParams = {
        "mode": mode,
        "customer": customer,
        "client_reference_id": str(owner),
        "line_items": [line_item],
        "metadata": metadata,
    }
    # the metadata travels on the session and on what it creates, so every later event carries it
    if mode == "payment":
        params["payment_intent_data"] = {"metadata": metadata}
    else:
        params["subscription_data"] = {"metadata": metadata}
    params["success_url"] = success_url
    params["cancel_url"] = cancel_url
    try:
        session = await client.v1.checkout.sessions.create_async(params)
    except stripe.InvalidRequestError as error:
        if not _customer_is_gone(error):
            raise
        # deleted in Stripe before its customer.deleted reached us (or that event was lost): the
        # stored id would fail every checkout forever; forget it and create the next customer
        await forget_customer(db, customer)
        params["customer"] = await ensure_customer(db, client, owner)
        session = await client.v1.checkout.sessions.create_async(params)
    url = web_url(getattr(session, "url", None))
    if url is None:
        raise StripeReplyInvalid("Stripe's checkout session has no usable http(s) url")
    return {"id": _stripe_id(session, _SESSION_ID, "checkout session"), "url": url}


async def credit_checkout(
    db: Executor, client: stripe.StripeClient, user_id: object, package_id: object, success_url: str, cancel_url: str
) -> dict[str, str]:
    owner = to_uuid(user_id, "user_id")
    package = await db.fetchrow(query("credit_package_for_sale"), to_uuid(package_id, "package_id"))
    if package is None:
        raise InvalidArgument(f"no active credit package {package_id}")
    name = f"{package['name']} ({package['credits'].normalize():f} credits)"
    metadata = {
        "user_id": str(owner),
        "package_id": str(package["id"]),
        "credits": str(package["credits"]),
        # what the user is shown: the webhook accepts this price even if the package's changes meanwhile
        "price_cents": str(to_cents(package["price_usd"])),
        "currency": CURRENCY,
        "kind": "credits",
    }
    line_item = _line_item(package["stripe_price_id"], package["price_usd"], name, monthly=False)
    session = await _session(db, client, owner, "payment", line_item, metadata, success_url, cancel_url)
    await record_session(db, session["id"], owner, package["id"], package["credits"], to_cents(package["price_usd"]))
    return session


async def record_session(
    db: Executor,
    session_id: str,
    user_id: uuid.UUID,
    package_id: uuid.UUID,
    credits: Decimal,
    price_cents: int,
    currency: str = CURRENCY,
) -> None:
    """What this service sold in a Checkout Session: the webhook credits a completed session only
    when it is recorded here and Stripe took this price in this currency (sql 0011)."""
    recorded = await db.fetchval(
        query("record_checkout_session"),
        session_id,
        user_id,
        package_id,
        credits,
        price_cents,
        currency,
    )
    if not recorded:
        # Stripe never reuses a session id: one already sold (to anyone) is not handed out again
        raise StripeReplyInvalid(f"Stripe's new checkout session {session_id} is already recorded")


async def subscription_checkout(
    db: Executor, client: stripe.StripeClient, user_id: object, tier: str, success_url: str, cancel_url: str
) -> dict[str, str]:
    owner = to_uuid(user_id, "user_id")
    if tier not in PAID_TIERS:
        raise InvalidArgument(f"tier must be one of {', '.join(PAID_TIERS)}, got {tier!r}")
    row = await db.fetchrow(query("subscription_tier_for_sale"), tier)
    if row is None:
        raise InvalidArgument(f"tier {tier} is not on sale")
    # checked before Stripe is called: a second paid subscription would be billed every month
    # beside the first, and changing tiers moves the one there is instead
    current = await live_subscription(db, owner)
    if current is not None:
        raise AlreadySubscribed(
            f"You already have a {current['tier']} subscription ({current['status']}); a second one"
            " would be billed beside it.",
            hint="change its tier instead (POST /v1/subscriptions/change); an unpaid or incomplete one is paid or"
            " cancelled at Stripe first",
        )
    metadata = {"user_id": str(owner), "tier": tier, "kind": "subscription"}
    line_item = _line_item(
        row["stripe_price_id"], row["price_usd"], f"{row['display_name']} subscription", monthly=True
    )
    return await _session(db, client, owner, "subscription", line_item, metadata, success_url, cancel_url)

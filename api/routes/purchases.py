"""Buying credits and subscriptions: packages, Stripe Checkout sessions (gateway-key auth)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Annotated, Literal, TypeVar

import stripe
from pydantic import AfterValidator, BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import parse_body
from api.services import services
from ledger.billing import checkout as stripe_checkout
from ledger.billing import tier_change
from ledger.billing.packages import packages_on_sale

log = logging.getLogger("ledger.stripe")
T = TypeVar("T")


def _web_url(value: str) -> str:
    if stripe_checkout.web_url(value) is None:
        raise ValueError("must be an http:// or https:// URL with a host, without spaces")
    return value


# where Stripe sends the user back: a web page, never javascript:, data: or ftp:
ReturnUrl = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_web_url)]


class CreditCheckout(BaseModel):
    package_id: str
    success_url: ReturnUrl
    cancel_url: ReturnUrl


class TierChange(BaseModel):
    tier: Literal["starter", "professional", "enterprise"]


class SubscriptionCheckout(BaseModel):
    tier: Literal["starter", "professional", "enterprise"]
    success_url: ReturnUrl
    cancel_url: ReturnUrl


async def packages(request: Request) -> Response:
    await gateway_owner(request)
    rows = await packages_on_sale(services(request).pool)
    return LedgerJSONResponse({"object": "list", "data": rows})


def stripe_of(request: Request) -> stripe.StripeClient:
    client: stripe.StripeClient | None = services(request).stripe
    if client is None:
        raise ApiError(
            503,
            "Purchases are off: the operator has not configured Stripe (LEDGER_STRIPE_SECRET_KEY).",
            type="service_unavailable",
            code="stripe_not_configured",
        )
    return client


async def _stripe_call(call: Awaitable[T], action: str, what: str) -> T:
    """Stripe refusing (bad key, Stripe down) or answering nonsense is a 502 with a generic message:
    Stripe's own words can name the account's key (sk_live_****1234) or its setup, so they go to
    the log, with anything key-like redacted, and never to the end user."""
    try:
        return await call
    except (stripe.StripeError, stripe_checkout.StripeReplyInvalid) as exc:
        detail = getattr(exc, "user_message", None) or str(exc)
        log.warning("stripe %s failed: %s: %s", what, type(exc).__name__, stripe_checkout.redact_keys(detail)[:500])
        raise ApiError(
            502,
            f"The payment provider could not {action}. Try again later.",
            type="upstream_error",
            code="stripe_error",
        ) from None


async def started_checkout(create: Awaitable[dict[str, str]]) -> dict[str, str]:
    """The Checkout Session Stripe started ({id, url}), or the 502 of _stripe_call."""
    return await _stripe_call(create, "start the checkout", "checkout")


async def _checkout(create: Awaitable[dict[str, str]]) -> Response:
    return LedgerJSONResponse(await started_checkout(create), status_code=201)


async def credit_checkout(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    client = stripe_of(request)
    body = await parse_body(request, CreditCheckout)
    return await _checkout(
        stripe_checkout.credit_checkout(
            services(request).pool, client, owner.user_id, body.package_id, body.success_url, body.cancel_url
        ),
    )


async def subscription_checkout(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    client = stripe_of(request)
    body = await parse_body(request, SubscriptionCheckout)
    return await _checkout(
        stripe_checkout.subscription_checkout(
            services(request).pool, client, owner.user_id, body.tier, body.success_url, body.cancel_url
        ),
    )


async def changed_tier(create: Awaitable[tier_change.TierChange]) -> tier_change.TierChange:
    """The change Stripe accepted, or the 502 of _stripe_call."""
    return await _stripe_call(create, "change the subscription", "subscription change")


async def change_subscription(request: Request) -> Response:
    """The caller's paid subscription moves to another tier in Stripe; the ledger's tier follows when
    Stripe's customer.subscription.updated webhook arrives, never from this answer."""
    owner = await gateway_owner(request, manages=True)
    client = stripe_of(request)
    body = await parse_body(request, TierChange)
    change = tier_change.change_tier(services(request).pool, client, owner.user_id, body.tier)
    return LedgerJSONResponse(await changed_tier(change))

"""Buying credits and subscriptions: packages, Stripe Checkout sessions (gateway-key auth)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal

import stripe
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import parse_body
from ledger import stripe_checkout


class CreditCheckout(BaseModel):
    package_id: str
    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)


class SubscriptionCheckout(BaseModel):
    tier: Literal["starter", "professional", "enterprise"]
    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)


async def packages(request: Request) -> Response:
    await gateway_owner(request)
    rows = await request.app.state.pool.fetch(
        "SELECT id, name, credits, price_usd, discount_percentage, description FROM credit_packages"
        " WHERE is_active ORDER BY sort_order, price_usd"
    )
    return LedgerJSONResponse({"object": "list", "data": [dict(r) for r in rows]})


def _stripe(request: Request) -> stripe.StripeClient:
    client = request.app.state.stripe
    if client is None:
        raise ApiError(
            503,
            "Purchases are off: the operator has not configured Stripe (LEDGER_STRIPE_SECRET_KEY).",
            type="service_unavailable",
            code="stripe_not_configured",
        )
    return client


async def _checkout(create: Awaitable[dict[str, str]]) -> Response:
    """Stripe's refusal (bad key, Stripe down) is a 502 with Stripe's own words."""
    try:
        session = await create
    except stripe.StripeError as exc:
        raise ApiError(
            502,
            f"Stripe refused the checkout: {exc.user_message or type(exc).__name__}.",
            type="upstream_error",
            code="stripe_error",
        ) from None
    return LedgerJSONResponse(session, status_code=201)


async def credit_checkout(request: Request) -> Response:
    owner = await gateway_owner(request)
    client = _stripe(request)
    body = await parse_body(request, CreditCheckout)
    return await _checkout(
        stripe_checkout.credit_checkout(
            request.app.state.pool, client, owner.user_id, body.package_id, body.success_url, body.cancel_url
        ),
    )


async def subscription_checkout(request: Request) -> Response:
    owner = await gateway_owner(request)
    client = _stripe(request)
    body = await parse_body(request, SubscriptionCheckout)
    return await _checkout(
        stripe_checkout.subscription_checkout(
            request.app.state.pool, client, owner.user_id, body.tier, body.success_url, body.cancel_url
        ),
    )

"""POST /webhooks/stripe: verify the signature on the raw body, then apply the event once."""

from __future__ import annotations

import stripe
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import json_object
from api.services import services
from ledger.billing.events import MalformedEvent, receive_event


async def stripe_webhook(request: Request) -> Response:
    secret = services(request).settings.stripe_webhook_secret
    if secret is None:
        raise ApiError(
            503,
            "Stripe webhooks are off: set LEDGER_STRIPE_WEBHOOK_SECRET.",
            type="service_unavailable",
            code="stripe_not_configured",
        )
    payload = await request.body()
    try:
        # the SDK decodes the body as UTF-8 itself, and fails with an error of its own when it is not
        payload.decode("utf-8")
    except UnicodeDecodeError:
        services(request).metrics.webhook_events.labels("unverified", "bad_body").inc()
        raise ApiError(400, "The request body is not UTF-8 JSON.", code="invalid_json") from None
    try:
        # verify_header checks a signature's age only when given a tolerance: the SDK's default, 5 minutes
        stripe.WebhookSignature.verify_header(
            payload,
            request.headers.get("stripe-signature"),
            secret.get_secret_value(),
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except stripe.SignatureVerificationError:
        services(request).metrics.webhook_events.labels("unverified", "bad_signature").inc()
        raise ApiError(400, "Invalid Stripe signature.", code="invalid_signature") from None
    # a signed event with text jsonb cannot hold is still Stripe's word: stored (sanitised) and
    # rejected with 2xx, so Stripe stops retrying it, rather than refused with a 400
    event = json_object(payload, storable_text=False)
    metrics = services(request).metrics
    raw_type = event.get("type")
    event_type = raw_type if isinstance(raw_type, str) else "unknown"
    try:
        outcome = await receive_event(services(request).pool, event)
    except MalformedEvent as exc:
        # only an event with no usable id or type: there is nothing to store it under
        metrics.webhook_events.labels(event_type[:100], "invalid").inc()
        raise ApiError(400, f"The event cannot be applied: {exc}", code="invalid_event") from None
    metrics.webhook_events.labels(event_type, outcome.status).inc()
    if outcome.status == "deferred":
        # non-2xx: Stripe delivers the event again later, when its target should exist
        raise ApiError(409, f"Not applied yet: {outcome.detail}. Stripe will retry.", code="event_deferred")
    # stale, rejected and review are final too: stored with their reason (the stripe_events ops
    # query lists them) and answered 2xx so Stripe stops retrying what can never be applied
    body = {"received": True, "status": outcome.status}
    if outcome.detail and outcome.status != "duplicate":
        body["detail"] = outcome.detail
    return LedgerJSONResponse(body)

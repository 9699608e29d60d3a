"""Applying Stripe webhook events to the ledger, each exactly once.

An event is stored by its id and applied in one transaction that also marks it processed; the
event's row is locked first, so two deliveries of one event serialise and the second finds it
done. An event whose target is not known yet (a refund before its checkout) is deferred: nothing
is applied, the event is kept, and the webhook answers non-2xx so Stripe delivers it again.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg

from ledger import credits, holds, users
from ledger.errors import InvalidAmount, InvalidId
from ledger.pricing import CREDIT_QUANTUM
from ledger.values import to_credits, to_uuid

log = logging.getLogger("ledger.stripe")


class Deferred(Exception):
    """The event's target is not known yet; Stripe should deliver it again later."""


class MalformedEvent(Exception):
    """A signed event that lacks what this service needs to apply it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # processed, ignored, duplicate, deferred
    detail: str = ""


Handler = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[None]]


def _id(value: Any) -> str | None:
    """A Stripe reference, expanded (an object with an id) or not (the id itself)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _require(obj: dict[str, Any], key: str) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise MalformedEvent(f"the event's object has no {key}")
    return value


def _cents(obj: dict[str, Any], key: str) -> int:
    value = _require(obj, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{key} must be a whole number of cents, got {value!r}")
    return value


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _share(total: Decimal, part: int, whole: int) -> Decimal:
    return (total * part / whole).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


# -- credit purchases ---------------------------------------------------------------------------


async def checkout_completed(conn: asyncpg.Connection, session: dict[str, Any]) -> None:
    """A paid payment-mode checkout credits its package once (keyed by its payment intent); an unpaid
    one (delayed payment methods) is recorded and credited when async_payment_succeeded arrives."""
    if session.get("mode") != "payment":
        return  # subscriptions are applied from invoice.paid
    metadata = session.get("metadata") or {}
    try:
        user_id = to_uuid(metadata.get("user_id") or session.get("client_reference_id"), "user_id")
        credit_amount = to_credits(metadata.get("credits"))
    except (InvalidId, InvalidAmount) as exc:
        raise MalformedEvent(f"checkout session without this service's metadata: {exc.message}") from None
    payment_intent = _id(session.get("payment_intent"))
    if payment_intent is None:
        raise MalformedEvent("checkout session without a payment intent")
    package_id = metadata.get("package_id")
    await users.lock_account(conn, user_id)
    await conn.execute(
        """INSERT INTO stripe_payments (payment_intent_id, checkout_session_id, user_id, package_id, credits,
                                        amount_cents, currency)
           VALUES ($1, $2, $3, $4::uuid, $5, $6, $7) ON CONFLICT (payment_intent_id) DO NOTHING""",
        payment_intent,
        _require(session, "id"),
        user_id,
        package_id,
        credit_amount,
        _cents(session, "amount_total"),
        str(session.get("currency") or "usd"),
    )
    if session.get("payment_status") != "paid":
        return
    name = await conn.fetchval("SELECT name FROM credit_packages WHERE id = $1::uuid", package_id) or "credits"
    result = await credits.add_user_credits(
        conn, user_id, credit_amount, "purchase", payment_intent, f"Purchased {name}"
    )
    await conn.execute(
        """UPDATE stripe_payments SET status = 'paid', transaction_id = $2, paid_at = coalesce(paid_at, now()),
                                      updated_at = now()
            WHERE payment_intent_id = $1 AND status = 'pending'""",
        payment_intent,
        result.transaction_id,
    )


async def _paid_payment(conn: asyncpg.Connection, payment_intent: str | None, charge_id: str | None) -> asyncpg.Record:
    """The credited purchase, locked after its user (the order every money writer follows)."""
    found = "payment_intent_id = $1 OR ($2::text IS NOT NULL AND charge_id = $2)"
    user_id = await conn.fetchval(
        f"SELECT user_id FROM stripe_payments WHERE {found}",  # noqa: S608 - constant
        payment_intent,
        charge_id,
    )
    if user_id is None:
        raise Deferred(f"no credited purchase for payment intent {payment_intent} yet")
    await users.lock_account(conn, user_id)
    payment = await conn.fetchrow(
        f"SELECT * FROM stripe_payments WHERE {found} FOR UPDATE",  # noqa: S608
        payment_intent,
        charge_id,
    )
    if payment["status"] == "pending":
        raise Deferred(f"the purchase for payment intent {payment_intent} is not paid yet")
    return payment


async def _take_back(
    conn: asyncpg.Connection,
    payment: asyncpg.Record,
    credit_amount: Decimal,
    reference: str,
    description: str,
) -> credits.RefundResult:
    result = await credits.refund_purchased_credits(conn, payment["user_id"], credit_amount, reference, description)
    await conn.execute(
        """UPDATE stripe_payments
              SET credits_refunded = credits_refunded + $2, refund_shortfall = refund_shortfall + $3, updated_at = now()
            WHERE payment_intent_id = $1""",
        payment["payment_intent_id"],
        credit_amount,
        result.shortfall,
    )
    if result.shortfall > 0:
        log.warning(
            "refund %s: %s credits were already spent and could not be taken back",
            reference,
            result.shortfall,
        )
    return result


async def charge_refunded(conn: asyncpg.Connection, charge: dict[str, Any]) -> None:
    """Credits in proportion to the newly refunded amount. Stripe's amount_refunded is cumulative:
    only what exceeds the cents already turned into refunds is new, so nothing counts twice. Each
    refund takes share(refunded so far) - share(refunded before), so partial refunds add up to
    exactly the share of their total, and a full refund to exactly the package's credits."""
    charge_id = _require(charge, "id")
    refunded_total = _cents(charge, "amount_refunded")
    payment = await _paid_payment(conn, _id(charge.get("payment_intent")), charge_id)
    amount, before = payment["amount_cents"], payment["refunded_cents"]
    after = min(refunded_total, amount)
    if after <= before:
        return
    credit_amount = min(
        _share(payment["credits"], after, amount) - _share(payment["credits"], before, amount),
        payment["credits"] - payment["credits_refunded"],
    )
    if credit_amount > 0:
        await _take_back(
            conn, payment, credit_amount, f"{charge_id}:refunded:{after}", f"Stripe refund of {after - before} cents"
        )
    await conn.execute(
        """UPDATE stripe_payments SET refunded_cents = $2, charge_id = $3, updated_at = now(),
                                      status = CASE WHEN $4 THEN 'refunded' ELSE 'partially_refunded' END
            WHERE payment_intent_id = $1""",
        payment["payment_intent_id"],
        after,
        charge_id,
        after == amount,
    )


async def dispute_created(conn: asyncpg.Connection, dispute: dict[str, Any]) -> None:
    """The disputed share of the purchase's credits is held until the dispute closes."""
    dispute_id = _require(dispute, "id")
    disputed_cents = _cents(dispute, "amount")
    payment = await _paid_payment(conn, _id(dispute.get("payment_intent")), _id(dispute.get("charge")))
    amount = min(disputed_cents, payment["amount_cents"])
    disputed = min(
        _share(payment["credits"], amount, payment["amount_cents"]),
        payment["credits"] - payment["credits_refunded"],
    )
    hold_id, held = (None, Decimal(0))
    if disputed > 0:
        hold_id, held = await holds.hold_disputed_credits(conn, payment["user_id"], disputed, dispute_id)
    await conn.execute(
        """INSERT INTO stripe_disputes (dispute_id, payment_intent_id, user_id, amount_cents, credits, hold_id,
                                        credits_held)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dispute_id) DO NOTHING""",
        dispute_id,
        payment["payment_intent_id"],
        payment["user_id"],
        amount,
        disputed,
        hold_id,
        held,
    )


async def dispute_closed(conn: asyncpg.Connection, dispute: dict[str, Any]) -> None:
    """Won: the held credits are released. Lost: released, then refunded (never below zero)."""
    dispute_id = _require(dispute, "id")
    user_id = await conn.fetchval("SELECT user_id FROM stripe_disputes WHERE dispute_id = $1", dispute_id)
    if user_id is None:
        raise Deferred(f"dispute {dispute_id} has not been opened here yet")
    await users.lock_account(conn, user_id)
    row = await conn.fetchrow("SELECT * FROM stripe_disputes WHERE dispute_id = $1 FOR UPDATE", dispute_id)
    if row["status"] != "open":
        return
    if row["hold_id"] is not None:
        await holds.release_credit_hold(conn, row["hold_id"])
    outcome = {"won": "won", "lost": "lost"}.get(str(dispute.get("status")), "closed")
    if outcome == "lost" and row["credits"] > 0:
        payment = await _paid_payment(conn, row["payment_intent_id"], None)
        await _take_back(conn, payment, row["credits"], f"dispute:{dispute_id}", f"Stripe dispute {dispute_id} lost")
    await conn.execute(
        "UPDATE stripe_disputes SET status = $2, closed_at = now() WHERE dispute_id = $1", dispute_id, outcome
    )


# -- subscriptions ------------------------------------------------------------------------------


async def _subscriber(conn: asyncpg.Connection, metadata: dict[str, Any], customer: str | None) -> uuid.UUID:
    if metadata.get("user_id"):
        try:
            return to_uuid(metadata["user_id"], "user_id")
        except InvalidId as exc:
            raise MalformedEvent(exc.message) from None
    user_id = await conn.fetchval("SELECT user_id FROM user_credits WHERE stripe_customer_id = $1", customer)
    if user_id is None:
        raise Deferred(f"no user for Stripe customer {customer} yet")
    return user_id


async def _tier_of(conn: asyncpg.Connection, price_ids: list[str], metadata: dict[str, Any]) -> str:
    if price_ids:
        tier = await conn.fetchval(
            "SELECT tier FROM subscription_tiers WHERE stripe_price_id = ANY($1::text[])", price_ids
        )
        if tier:
            return str(tier)
    tier = metadata.get("tier")
    if not tier:
        raise MalformedEvent("subscription with neither a known price nor a tier in its metadata")
    return str(tier)


async def _record_subscription(
    conn: asyncpg.Connection,
    subscription_id: str,
    user_id: uuid.UUID,
    tier: str,
    status: str,
    start: datetime | None,
    end: datetime | None,
) -> None:
    await conn.execute(
        """INSERT INTO stripe_subscriptions AS s (subscription_id, user_id, tier, status, current_period_start,
                                             current_period_end)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (subscription_id) DO UPDATE
              SET tier = EXCLUDED.tier, status = EXCLUDED.status, updated_at = now(),
                  current_period_start = coalesce(EXCLUDED.current_period_start, s.current_period_start),
                  current_period_end = coalesce(EXCLUDED.current_period_end, s.current_period_end)""",
        subscription_id,
        user_id,
        tier,
        status,
        start,
        end,
    )


async def invoice_paid(conn: asyncpg.Connection, invoice: dict[str, Any]) -> None:
    """A paid subscription invoice (first or renewal): the tier, its allowance, a new billing cycle."""
    details = (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    subscription_id = _id(invoice.get("subscription")) or _id(details.get("subscription"))
    if subscription_id is None:
        return  # a one-off invoice: nothing to do with tiers
    lines = (invoice.get("lines") or {}).get("data") or []
    metadata = {**(lines[0].get("metadata") or {} if lines else {}), **(details.get("metadata") or {})}
    user_id = await _subscriber(conn, metadata, _id(invoice.get("customer")))
    price_ids = [
        p
        for line in lines
        if (p := _id((line.get("pricing") or {}).get("price_details", {}).get("price")) or _id(line.get("price")))
    ]
    tier = await _tier_of(conn, price_ids, metadata)
    period = (lines[0].get("period") or {}) if lines else {}
    start = _timestamp(period.get("start")) or _timestamp(invoice.get("period_start")) or datetime.now(UTC)
    end = _timestamp(period.get("end")) or _timestamp(invoice.get("period_end"))
    await users.set_user_tier(conn, user_id, tier, cycle_start=start)
    await _record_subscription(conn, subscription_id, user_id, tier, "active", start, end)


ENDED = ("canceled", "unpaid", "incomplete_expired")


async def subscription_updated(conn: asyncpg.Connection, subscription: dict[str, Any]) -> None:
    """A plan change moves the user to the new tier (the cycle goes on); an ended one to trial."""
    subscription_id = _require(subscription, "id")
    metadata = subscription.get("metadata") or {}
    user_id = await _subscriber(conn, metadata, _id(subscription.get("customer")))
    items = (subscription.get("items") or {}).get("data") or []
    tier = await _tier_of(conn, [p for item in items if (p := _id(item.get("price")))], metadata)
    status = str(subscription.get("status") or "active")
    await users.set_user_tier(conn, user_id, "trial" if status in ENDED else tier)
    await _record_subscription(conn, subscription_id, user_id, tier, status, None, None)


async def subscription_deleted(conn: asyncpg.Connection, subscription: dict[str, Any]) -> None:
    subscription_id = _require(subscription, "id")
    user_id = await _subscriber(conn, subscription.get("metadata") or {}, _id(subscription.get("customer")))
    await users.set_user_tier(conn, user_id, "trial")
    await conn.execute(
        "UPDATE stripe_subscriptions SET status = 'canceled', updated_at = now() WHERE subscription_id = $1",
        subscription_id,
    )


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "invoice.paid": invoice_paid,
    "customer.subscription.updated": subscription_updated,
    "customer.subscription.deleted": subscription_deleted,
}


# -- receiving ----------------------------------------------------------------------------------


async def receive_event(pool: asyncpg.Pool, event: dict[str, Any]) -> Outcome:
    """Store and apply one verified event. Raises MalformedEvent (nothing written) for an event
    that cannot be applied; returns a deferred Outcome (event kept, nothing applied) when its
    target is not known yet."""
    event_id, event_type = event.get("id"), event.get("type")
    obj = (event.get("data") or {}).get("object")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, dict):
        raise MalformedEvent("an event needs id, type and data.object")
    payload = json.dumps(event)
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO stripe_events (id, type, payload, livemode) VALUES ($1, $2, $3::jsonb, $4)"
                    " ON CONFLICT (id) DO NOTHING",
                    event_id,
                    event_type,
                    payload,
                    bool(event.get("livemode")),
                )
                status = await conn.fetchval("SELECT status FROM stripe_events WHERE id = $1 FOR UPDATE", event_id)
                if status in ("processed", "ignored"):
                    return Outcome("duplicate")
                handler = HANDLERS.get(event_type)
                if handler is not None:
                    await handler(conn, obj)
                outcome = "processed" if handler is not None else "ignored"
                await conn.execute(
                    "UPDATE stripe_events SET status = $2, attempts = attempts + 1, last_error = NULL,"
                    " processed_at = now() WHERE id = $1",
                    event_id,
                    outcome,
                )
                return Outcome(outcome)
        except Deferred as exc:
            await conn.execute(
                """INSERT INTO stripe_events (id, type, payload, livemode, status, attempts, last_error)
                   VALUES ($1, $2, $3::jsonb, $4, 'deferred', 1, $5)
                   ON CONFLICT (id) DO UPDATE SET status = 'deferred', attempts = stripe_events.attempts + 1,
                                                  last_error = EXCLUDED.last_error
                   WHERE stripe_events.status NOT IN ('processed', 'ignored')""",
                event_id,
                event_type,
                payload,
                bool(event.get("livemode")),
                str(exc),
            )
            log.info("stripe event %s (%s) deferred: %s", event_id, event_type, exc)
            return Outcome("deferred", str(exc))

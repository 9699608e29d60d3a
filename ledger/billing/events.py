"""Applying Stripe webhook events to the ledger, each exactly once, in whatever order they come.

An event is stored by its id and applied in one transaction that also marks it with its outcome;
the event's row is locked first, so two deliveries of one event serialise and the second finds it
done. Outcomes:

- processed / ignored: applied, or a type with no effect here.
- deferred: its target is not known yet (a refund before its checkout); nothing applied, the event
  kept, answered non-2xx so Stripe delivers it again.
- stale: older than what was already applied to its subscription; kept, changes nothing.
- rejected: signed, but it can never be applied (unknown package, zero amount, bad ids, wrong
  types, missing metadata); kept with its reason.
- review: real money that does not match what was sold (currency, amount); nothing credited, kept
  for a human.

Every outcome but deferred is final and answered 2xx, so Stripe stops retrying it. Only an event
without a usable id (nothing to key it by) is refused with a 400.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeAlias, cast, overload

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ledger.billing.customers import forget_customer
from ledger.db.queries import query
from ledger.errors import LedgerError
from ledger.money import accounts as users
from ledger.money import credits, holds
from ledger.money.values import CREDIT_QUANTUM, to_credits, to_uuid

log = logging.getLogger("ledger.stripe")

CURRENCY = "usd"  # the catalog's prices (price_usd) are US dollars, sent to Stripe in cents
MAX_CENTS = 10**11  # a billion dollars: anything above is not a real payment
FINAL = ("processed", "ignored", "stale", "rejected", "review")
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,100}")
_CURRENCY = re.compile(r"[a-z]{3}")


class Deferred(Exception):
    """The event's target is not known yet; Stripe should deliver it again later."""


class MalformedEvent(Exception):
    """A signed event that this service can never apply (stored as rejected with this reason)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # processed, ignored, duplicate, deferred, stale, rejected, review
    detail: str = ""
    reference: str | None = None  # the payment intent a rejected checkout concerned


@dataclass(frozen=True, slots=True)
class EventInfo:
    id: str
    type: str
    created: Any  # Stripe's unix seconds, unchecked until a handler needs it


# What a handler runs on: receive_event's connection from the pool, or a connection of its own.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy
Handler = Callable[[Conn, dict[str, Any], EventInfo], Awaitable[Outcome | None]]


# -- reading Stripe's objects: every field checked, a wrong one is a MalformedEvent -------------


@overload
def _ref(value: Any, what: str, *, required: Literal[True] = True) -> str: ...
@overload
def _ref(value: Any, what: str, *, required: bool) -> str | None: ...
def _ref(value: Any, what: str, *, required: bool = True) -> str | None:
    """A Stripe id, expanded (an object with an id) or not (the id itself)."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        if required:
            raise MalformedEvent(f"{what} is missing")
        return None
    if not isinstance(value, str) or not _STRIPE_ID.fullmatch(value):
        raise MalformedEvent(f"{what} is not a Stripe id: {str(value)[:80]!r}")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedEvent(f"{what} must be a list of objects")
    return value


@overload
def _cents(obj: dict[str, Any], key: str, *, required: Literal[True] = True) -> int: ...
@overload
def _cents(obj: dict[str, Any], key: str, *, required: bool) -> int | None: ...
def _cents(obj: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CENTS:
        raise MalformedEvent(f"{key} must be a whole number of cents from 0 to {MAX_CENTS}, got {str(value)[:80]}")
    return value


@overload
def _currency(obj: dict[str, Any], *, required: Literal[True] = True) -> str: ...
@overload
def _currency(obj: dict[str, Any], *, required: bool) -> str | None: ...
def _currency(obj: dict[str, Any], *, required: bool = True) -> str | None:
    value = obj.get("currency")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.lower()):
        raise MalformedEvent(f"currency must be a three-letter code, got {str(value)[:80]!r}")
    return value.lower()


def _unix(value: Any, what: str) -> int:
    """Unix seconds from 2000 to 2200: Stripe's times, and nothing a datetime cannot hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not 946_684_800 <= value <= 7_258_118_400:
        raise MalformedEvent(f"{what} must be Unix seconds, got {str(value)[:80]}")
    return value


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _user_id(value: Any, what: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise MalformedEvent(f"{what} must be a UUID string, got {type(value).__name__}")
    try:
        return to_uuid(value, what)
    except LedgerError as exc:
        raise MalformedEvent(exc.message) from None


def _one(row: asyncpg.Record | None, what: str) -> asyncpg.Record:
    """A row the statement always returns (a row inserted or found earlier in this transaction, or an
    aggregate): none is a broken invariant, never an event to reject."""
    if row is None:
        raise RuntimeError(f"no row for {what}, which this transaction found or wrote already")
    return row


def _share(total: Decimal, part: int, whole: int) -> Decimal:
    return (total * part / whole).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def _storable(value: Any) -> Any:
    """The event as jsonb can hold it: NUL characters, lone surrogates and non-finite numbers have
    no jsonb form."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


# -- credit purchases ---------------------------------------------------------------------------


async def checkout_completed(conn: Conn, session: dict[str, Any], event: EventInfo) -> Outcome | None:
    """A paid payment-mode checkout credits, once (keyed by its payment intent), what this service
    recorded when it created the session (sql 0011): that user, those credits, after checking that
    Stripe took the recorded price in the recorded currency. A session the service did not create
    (another integration or a payment link on the same account, whatever its metadata says) or one
    whose amount, currency or metadata differ from the record is kept for review, crediting nothing.
    An unpaid one (delayed payment methods) is recorded and credited when async_payment_succeeded
    arrives."""
    if session.get("mode") == "setup":
        return Outcome("ignored", "a saved card is applied from setup_intent.succeeded")
    if session.get("mode") != "payment":
        return Outcome("ignored", "subscription checkouts are applied from invoice.paid")
    metadata = _dict(session.get("metadata"), "metadata")
    user_id = _user_id(metadata.get("user_id") or session.get("client_reference_id"), "metadata user_id")
    package_id = _user_id(metadata.get("package_id"), "metadata package_id")
    session_id = _ref(session.get("id"), "the session's id")
    amount = _cents(session, "amount_total")
    currency = _currency(session)
    payment_status = session.get("payment_status")
    if payment_status not in ("paid", "unpaid", "no_payment_required"):
        raise MalformedEvent(f"payment_status {str(payment_status)[:40]!r} is not one Stripe sends")
    if amount == 0 or payment_status == "no_payment_required":
        # this service never offers a free checkout: one that took no payment is not ours to credit
        raise MalformedEvent("the session took no payment (amount_total 0 or no_payment_required)")
    payment_intent = _ref(session.get("payment_intent"), "the session's payment_intent")
    package = await conn.fetchrow(query("credit_package_by_id"), package_id)
    if package is None:
        raise MalformedEvent(f"unknown credit package {package_id}")
    sold = await conn.fetchrow(query("checkout_session_sold"), session_id)

    problems = []
    credits_sold = package["credits"]
    if sold is None:
        problems.append(f"session {session_id} was not created by this service")
    else:
        credits_sold = sold["credits"]
        if (sold["user_id"], sold["package_id"]) != (user_id, package_id):
            problems.append("the session's user or package is not the one this service sold it to")
        if currency != sold["currency"]:
            problems.append(f"currency {currency}, the session was sold in {sold['currency']}")
        if amount != sold["price_cents"]:
            problems.append(f"amount_total {amount} is not the price the session was sold at ({sold['price_cents']})")
    if "credits" in metadata:
        try:
            claimed = to_credits(metadata["credits"])
        except LedgerError:
            raise MalformedEvent(f"metadata credits {str(metadata['credits'])[:40]!r} is not an amount") from None
        if claimed != credits_sold:
            problems.append(f"the session's metadata says {claimed} credits, {credits_sold} were sold")

    await users.lock_account(conn, user_id)
    # a session is paid once: the same session with another payment intent is not a second purchase
    # (checked here, under the user's lock, rather than left to the unique constraint's error)
    other = await conn.fetchval(query("other_payment_of_session"), session_id, payment_intent)
    if other is not None:
        raise MalformedEvent(f"checkout session {session_id} was already paid with payment intent {other}")
    await conn.execute(
        query("insert_stripe_payment"),
        payment_intent,
        session_id,
        user_id,
        package_id,
        credits_sold,
        amount,
        currency,
        "review" if problems else "pending",
        "; ".join(problems) or None,
    )
    # the row exists: inserted just above, or by an earlier delivery (stripe_payments rows are never deleted)
    payment = _one(await conn.fetchrow(query("lock_payment_by_intent"), payment_intent), "the payment just recorded")
    if payment["user_id"] != user_id or payment["checkout_session_id"] != session_id:
        raise MalformedEvent(f"payment intent {payment_intent} belongs to another session or user")
    if problems and payment["status"] == "pending":
        await conn.execute(query("payment_to_review"), payment_intent, "; ".join(problems))
    if problems or payment["status"] == "review":
        reason = "; ".join(problems) or payment["review_reason"] or "the purchase is under review"
        log.warning("stripe checkout %s kept for review: %s", session_id, reason)
        return Outcome("review", reason)
    if payment_status != "paid" or payment["status"] != "pending":
        return None
    result = await credits.add_user_credits(
        conn, user_id, payment["credits"], "purchase", payment_intent, f"Purchased {package['name']}"
    )
    await conn.execute(query("payment_credited"), payment_intent, result.transaction_id)
    return None


async def _payment(conn: Conn, payment_intent: str | None, charge_id: str | None) -> asyncpg.Record | Outcome:
    """The purchase a refund or dispute is about, locked after its user (the order every money
    writer follows); an Outcome when its checkout was rejected (nothing was credited to take back)."""
    user_id = await conn.fetchval(query("payment_user_by_intent_or_charge"), payment_intent, charge_id)
    if user_id is None:
        if payment_intent is not None and await conn.fetchval(query("checkout_was_rejected"), payment_intent):
            return Outcome("ignored", f"the checkout of payment intent {payment_intent} was rejected: no credits")
        raise Deferred(f"no credited purchase for payment intent {payment_intent} yet")
    await users.lock_account(conn, user_id)
    # found just above by the same condition; stripe_payments rows are never deleted
    payment = _one(
        await conn.fetchrow(query("lock_payment_by_intent_or_charge"), payment_intent, charge_id),
        f"the purchase of payment intent {payment_intent} (charge {charge_id})",
    )
    if payment["status"] == "pending":
        raise Deferred(f"the purchase for payment intent {payment_intent} is not paid yet")
    return payment


def _credited(payment: asyncpg.Record) -> Decimal:
    """The credits the purchase actually put on the balance (none while it is under review)."""
    return Decimal(0) if payment["status"] == "review" else cast(Decimal, payment["credits"])  # numeric NOT NULL


async def _take_back(
    conn: Conn,
    payment: asyncpg.Record,
    credit_amount: Decimal,
    reference: str,
    description: str,
) -> credits.RefundResult:
    result = await credits.refund_purchased_credits(conn, payment["user_id"], credit_amount, reference, description)
    await conn.execute(
        query("record_credits_taken_back"),
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


async def charge_refunded(conn: Conn, charge: dict[str, Any], event: EventInfo) -> Outcome | None:
    """Credits in proportion to the newly refunded amount. Stripe's amount_refunded is cumulative:
    only what exceeds the cents already turned into refunds is new, so nothing counts twice. Each
    refund takes share(refunded so far) - share(refunded before), so partial refunds add up to
    exactly the share of their total, and a full refund to exactly the package's credits. A charge
    in another currency or for another amount than the purchase is kept for review."""
    charge_id = _ref(charge.get("id"), "the charge's id")
    refunded_total = _cents(charge, "amount_refunded")
    charged = _cents(charge, "amount", required=False)
    currency = _currency(charge, required=False)
    if charged is not None and refunded_total > charged:
        raise MalformedEvent(f"amount_refunded {refunded_total} exceeds the charge's amount {charged}")
    payment = await _payment(conn, _ref(charge.get("payment_intent"), "payment_intent", required=False), charge_id)
    if isinstance(payment, Outcome):
        return payment
    if currency is not None and currency != payment["currency"]:
        return Outcome("review", f"refund in {currency} of a purchase in {payment['currency']}")
    if charged is not None and charged != payment["amount_cents"]:
        return Outcome("review", f"charge of {charged} cents for a purchase of {payment['amount_cents']}")
    amount, before = payment["amount_cents"], payment["refunded_cents"]
    after = min(refunded_total, amount)
    if after <= before:
        return None
    await conn.execute(query("set_payment_refunded_cents"), payment["payment_intent_id"], after)
    await _settle(
        conn, payment["payment_intent_id"], f"{charge_id}:refunded:{after}", f"Stripe refund of {after - before} cents"
    )
    await conn.execute(
        query("record_payment_refund"),
        payment["payment_intent_id"],
        after,
        charge_id,
        after == amount,
    )
    return None


async def _claims(conn: Conn, payment_intent: str) -> tuple[asyncpg.Record, int, int, Decimal]:
    """The purchase (locked already by the caller), the cents of its lost disputes, the cents of its
    open disputes and the credits its open disputes hold."""
    payment = _one(await conn.fetchrow(query("payment_by_intent"), payment_intent), "the locked purchase")
    sums = _one(await conn.fetchrow(query("dispute_totals_of_payment"), payment_intent), "the dispute totals")
    return payment, int(sums["lost"]), int(sums["open"]), sums["held"]


async def _settle(conn: Conn, payment_intent: str, reference: str, description: str) -> None:
    """Take back what the purchase's refunds and lost disputes together owe, once.

    Refunds and disputes of one payment share one cap: the credits taken back in total are always
    share(refunded cents + lost-disputed cents, at most the amount charged), computed on the
    running total, so several disputes, a dispute after a refund or a refund after a dispute never
    take more than the purchase credited. What open disputes hold is not taken twice: the take
    stops short of it, and the dispute's closing settles the rest (won or lost)."""
    payment, lost, _, held = await _claims(conn, payment_intent)
    credited, amount = _credited(payment), payment["amount_cents"]
    target = _share(credited, min(payment["refunded_cents"] + lost, amount), amount)
    take = min(target, credited - held) - payment["credits_refunded"]
    if take > 0:
        await _take_back(conn, payment, take, reference, description)


async def _to_hold(conn: Conn, payment_intent: str, cents: int) -> Decimal:
    """The credits a new dispute of these cents holds: the share its cents add on top of what was
    refunded, lost or is disputed already (all capped together at the amount charged), and never
    more than the purchase credited minus what was taken back and is held."""
    payment, lost, opened, held = await _claims(conn, payment_intent)
    credited, amount = _credited(payment), payment["amount_cents"]
    claimed = payment["refunded_cents"] + lost + opened
    share = _share(credited, min(claimed + cents, amount), amount) - _share(credited, min(claimed, amount), amount)
    taken_back: Decimal = payment["credits_refunded"]  # numeric NOT NULL
    return max(Decimal(0), min(share, credited - taken_back - held))


async def _disputed_payment(conn: Conn, dispute: dict[str, Any]) -> asyncpg.Record | Outcome:
    """The purchase a dispute is about, by its payment intent or charge (or the outcome when none is)."""
    return await _payment(
        conn,
        _ref(dispute.get("payment_intent"), "payment_intent", required=False),
        _ref(dispute.get("charge"), "charge", required=False),
    )


async def dispute_created(conn: Conn, dispute: dict[str, Any], event: EventInfo) -> Outcome | None:
    """The disputed share of the purchase's credits is held until the dispute closes."""
    dispute_id = _ref(dispute.get("id"), "the dispute's id")
    disputed_cents = _cents(dispute, "amount")
    payment = await _disputed_payment(conn, dispute)
    if isinstance(payment, Outcome):
        return payment
    currency = _currency(dispute, required=False)
    if currency is not None and currency != payment["currency"]:
        return Outcome("review", f"dispute in {currency} of a purchase in {payment['currency']}")
    if await conn.fetchval(query("dispute_exists"), dispute_id):
        return Outcome("stale", f"dispute {dispute_id} is already recorded (closed before it was opened here?)")
    amount = min(disputed_cents, payment["amount_cents"])
    disputed = await _to_hold(conn, payment["payment_intent_id"], amount)
    hold_id, held = (None, Decimal(0))
    if disputed > 0:
        hold_id, held = await holds.hold_disputed_credits(conn, payment["user_id"], disputed, dispute_id)
    await conn.execute(
        query("insert_open_dispute"),
        dispute_id,
        payment["payment_intent_id"],
        payment["user_id"],
        amount,
        disputed,
        hold_id,
        held,
    )
    return None


async def dispute_closed(conn: Conn, dispute: dict[str, Any], event: EventInfo) -> Outcome | None:
    """Won: the held credits are released. Lost: released, then refunded (never below zero). A
    dispute closed before its created event arrived is applied from the closed event alone (its
    amount and payment are in it), so the late created event finds it closed and holds nothing."""
    dispute_id = _ref(dispute.get("id"), "the dispute's id")
    outcome = {"won": "won", "lost": "lost"}.get(str(dispute.get("status")), "closed")
    user_id = await conn.fetchval(query("dispute_user"), dispute_id)
    if user_id is None:
        payment = await _disputed_payment(conn, dispute)
        if isinstance(payment, Outcome):
            return payment
        amount = min(_cents(dispute, "amount"), payment["amount_cents"])
        disputed = _share(_credited(payment), amount, payment["amount_cents"])
        await conn.execute(
            query("insert_dispute_from_closed_event"),
            dispute_id,
            payment["payment_intent_id"],
            payment["user_id"],
            amount,
            disputed,
        )
        user_id = payment["user_id"]
    await users.lock_account(conn, user_id)
    # found by dispute_user above, or inserted just above (stripe_disputes rows are never deleted)
    row = _one(await conn.fetchrow(query("lock_dispute"), dispute_id), f"dispute {dispute_id}")
    if row["status"] != "open":
        return None
    if row["hold_id"] is not None:
        await holds.release_credit_hold(conn, row["hold_id"])
    payment = await _payment(conn, row["payment_intent_id"], None)
    await conn.execute(query("close_dispute"), dispute_id, outcome)
    if not isinstance(payment, Outcome):
        # won or lost, the hold is gone: settle what refunds and lost disputes owe in total (a lost
        # dispute adds its cents; a refund that stopped short of this dispute's hold gets its rest)
        await _settle(conn, row["payment_intent_id"], f"dispute:{dispute_id}", f"Stripe dispute {dispute_id} {outcome}")
    return None


# -- subscriptions ------------------------------------------------------------------------------

# What each Stripe subscription status gives the user (docs/decisions.md): a paid tier only while
# Stripe says the subscription is paid for (active, trialing) or within its dunning grace
# (past_due, until Stripe moves it on to unpaid or canceled). Everything else is the trial tier.
PAID_STATUSES = ("active", "trialing", "past_due")
# canceled and incomplete_expired are final in Stripe (a new subscription gets a new id): once one
# is applied, no later event of that subscription brings it back.
TERMINAL = ("canceled", "incomplete_expired")
# The tie-break for events of one subscription created in the same second: the later state of a
# subscription's life wins (incomplete -> trialing -> active -> past_due -> unpaid -> paused ->
# ended); a final status beats every other whatever its time.
STATUS_RANK = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "past_due": 3,
    "unpaid": 4,
    "paused": 5,
    "incomplete_expired": 6,
    "canceled": 7,
}


def _order_key(status: str, created: int | None, rank: int | None, event_id: str | None) -> tuple[Any, ...]:
    """Events of one subscription are applied in this order, whatever order they arrive in."""
    return (status in TERMINAL, created if created is not None else -1, rank or 0, event_id or "")


async def _subscriber(conn: Conn, metadata: dict[str, Any], customer: str | None) -> uuid.UUID:
    if metadata.get("user_id"):
        return _user_id(metadata["user_id"], "metadata user_id")
    if customer is None:
        raise MalformedEvent("neither a user_id in the metadata nor a customer")
    user_id: uuid.UUID | None = await conn.fetchval(query("user_of_stripe_customer"), customer)  # a uuid column
    if user_id is None:
        raise Deferred(f"no user for Stripe customer {customer} yet")
    return user_id


async def _tier_of(conn: Conn, price_ids: list[str], metadata: dict[str, Any]) -> str:
    """The paid tier a subscription is for: its Stripe price's tier, else the tier in its metadata."""
    if price_ids:
        tier = await conn.fetchval(query("paid_tier_of_prices"), price_ids)
        if tier:
            return str(tier)
    tier = metadata.get("tier")
    if not tier:
        raise MalformedEvent("subscription with neither a known price nor a tier in its metadata")
    if not isinstance(tier, str) or not await conn.fetchval(query("paid_tier_exists"), tier):
        raise MalformedEvent(f"unknown paid tier {str(tier)[:40]!r}")
    return tier


async def _ranks_higher(conn: Conn, tier: str, than: str) -> bool:
    best = await conn.fetchval(query("better_of_two_tiers"), tier, than)
    return tier != than and best == tier


async def _apply_user_tier(conn: Conn, user_id: uuid.UUID, cycle_start: datetime | None) -> None:
    """The user's tier is the best tier among their subscriptions in a paid status (trial when none),
    so ending an old subscription never takes away a newer one's tier."""
    tier = await conn.fetchval(query("best_paid_tier_of_user"), user_id, PAID_STATUSES)
    await users.set_user_tier(conn, user_id, str(tier or "trial"), cycle_start=cycle_start)


async def _locked_subscription(conn: Conn, subscription_id: str, user_id: uuid.UUID) -> asyncpg.Record | None:
    await users.lock_account(conn, user_id)
    row = await conn.fetchrow(query("lock_subscription"), subscription_id)
    if row is not None and row["user_id"] != user_id:
        raise MalformedEvent(f"subscription {subscription_id} belongs to another user")
    return row


def _invoice_subscription(invoice: dict[str, Any], lines: list[dict[str, Any]]) -> str | None:
    parent = _dict(invoice.get("parent"), "parent")
    details = _dict(parent.get("subscription_details") or invoice.get("subscription_details"), "subscription_details")
    found = _ref(invoice.get("subscription"), "subscription", required=False) or _ref(
        details.get("subscription"), "subscription", required=False
    )
    for line in lines:
        if found:
            break
        line_parent = _dict(line.get("parent"), "line parent")
        item = _dict(line_parent.get("subscription_item_details"), "subscription_item_details")
        found = _ref(item.get("subscription"), "subscription", required=False)
    return found


def _is_proration(line: dict[str, Any]) -> bool:
    """A proration line: `proration` on the line (API versions before 2025-03-31) or on its
    subscription item details (since)."""
    item = _dict(_dict(line.get("parent"), "line parent").get("subscription_item_details"), "subscription_item_details")
    return line.get("proration") is True or item.get("proration") is True


def _line_start(line: dict[str, Any]) -> int:
    start = _dict(line.get("period"), "period").get("start")
    return start if isinstance(start, int) and not isinstance(start, bool) else 0


async def invoice_paid(conn: Conn, invoice: dict[str, Any], event: EventInfo) -> Outcome | None:
    """A paid subscription invoice (first or renewal) starts a new billing cycle at its period's
    start, once: only an invoice whose period is newer than the newest period already paid for
    this subscription moves the cycle; a late or replayed one is stale. It sets the subscription's
    status only when no subscription event has been seen yet (the payment proves it active)."""
    lines = _list(_dict(invoice.get("lines"), "lines").get("data"), "lines.data")
    subscription_id = _invoice_subscription(invoice, lines)
    if subscription_id is None:
        return Outcome("ignored", "a one-off invoice: nothing to do with tiers")
    parent = _dict(invoice.get("parent"), "parent")
    details = _dict(parent.get("subscription_details") or invoice.get("subscription_details"), "subscription_details")
    # after a prorated change, Stripe lists the proration lines ("Unused time on ... after <change>",
    # from the change to the renewal) first: the period paid for is the latest-starting line that
    # is not a proration, and only its price says the tier
    charged = [line for line in lines if not _is_proration(line)]
    if lines and not charged:
        return Outcome("ignored", "an invoice of prorations only: the period paid for goes on")
    first_line = max(charged, key=_line_start) if charged else {}
    metadata = {**_dict(first_line.get("metadata"), "line metadata"), **_dict(details.get("metadata"), "metadata")}
    user_id = await _subscriber(conn, metadata, _ref(invoice.get("customer"), "customer", required=False))
    price_ids = []
    for line in charged:
        pricing = _dict(_dict(line.get("pricing"), "pricing").get("price_details"), "price_details")
        price = _ref(pricing.get("price"), "price", required=False) or _ref(line.get("price"), "price", required=False)
        if price:
            price_ids.append(price)
    tier = await _tier_of(conn, price_ids, metadata)
    period = _dict(first_line.get("period"), "period")
    start = _unix(
        period.get("start") if period.get("start") is not None else invoice.get("period_start"), "period start"
    )
    end_value = period.get("end") if period.get("end") is not None else invoice.get("period_end")
    end = _unix(end_value, "period end") if end_value is not None else None
    if end is not None and end < start:
        raise MalformedEvent("the invoice's period ends before it starts")
    if _at(start) > datetime.now(UTC) + timedelta(days=1):
        raise MalformedEvent(f"the invoice's period starts in the future ({_at(start).isoformat()})")
    row = await _locked_subscription(conn, subscription_id, user_id)
    if row is not None and row["current_period_start"] is not None and _at(start) <= row["current_period_start"]:
        if (
            _at(start) == row["current_period_start"]
            and row["last_event_created"] is None
            and await _ranks_higher(conn, tier, str(row["tier"]))
        ):
            # no subscription event yet: of two invoices paid for one period (an upgrade's proration),
            # the better tier holds, whichever came first; the cycle stays
            await conn.execute(query("set_subscription_tier"), subscription_id, tier)
            await _apply_user_tier(conn, user_id, None)
            return None
        return Outcome("stale", f"period {_at(start).isoformat()} is not newer than the one paid")
    await conn.execute(
        query("upsert_subscription_period"),
        subscription_id,
        user_id,
        tier,
        _at(start),
        _at(end) if end is not None else None,
    )
    # the cycle only moves forward: also never before the user's current cycle (another
    # subscription's, or one the calendar rolled to already), which set_user_tier refuses too
    current_cycle = await conn.fetchval(query("billing_cycle_start_of_user"), user_id)
    await _apply_user_tier(conn, user_id, _at(start) if _at(start) > current_cycle else None)
    return None


async def subscription_changed(conn: Conn, sub: dict[str, Any], event: EventInfo) -> Outcome | None:
    """The subscription's status and plan as of this event, unless a later event (by Stripe's
    created time, then status rank, then event id; a final status beats all) was applied already:
    then the event is stale and changes nothing. The cycle goes on; only invoice.paid starts one."""
    subscription_id = _ref(sub.get("id"), "the subscription's id")
    status = "canceled" if event.type == "customer.subscription.deleted" else sub.get("status")
    if not isinstance(status, str) or status not in STATUS_RANK:
        raise MalformedEvent(f"unknown subscription status {str(status)[:40]!r}")
    created = _unix(event.created, "the event's created")
    metadata = _dict(sub.get("metadata"), "metadata")
    user_id = await _subscriber(conn, metadata, _ref(sub.get("customer"), "customer", required=False))
    items = _list(_dict(sub.get("items"), "items").get("data"), "items.data")
    price_ids = [p for item in items if (p := _ref(item.get("price"), "price", required=False))]
    try:
        tier: str | None = await _tier_of(conn, price_ids, metadata)
    except MalformedEvent:
        if status in PAID_STATUSES:
            raise
        tier = None  # an ended subscription needs no plan to end: it must never be kept alive by a missing one
    row = await _locked_subscription(conn, subscription_id, user_id)
    if tier is None:
        tier = str(row["tier"]) if row is not None else "trial"
    key = _order_key(status, created, STATUS_RANK[status], event.id)
    if row is not None and row["last_event_created"] is not None:
        applied = _order_key(row["status"], row["last_event_created"], row["last_event_rank"], row["last_event_id"])
        if key <= applied:
            return Outcome("stale", f"event {row['last_event_id']} ({row['status']}) of this subscription is newer")
    await conn.execute(
        query("upsert_subscription_status"),
        subscription_id,
        user_id,
        tier,
        status,
        created,
        STATUS_RANK[status],
        event.id,
    )
    await _apply_user_tier(conn, user_id, None)
    return None


async def customer_deleted(conn: Conn, customer: dict[str, Any], _event: EventInfo) -> Outcome | None:
    """A customer deleted in Stripe can never be used again: the account holding it forgets it and
    gets a new one at its next checkout. Only the account still holding that very id changes, so a
    redelivered or reordered event changes nothing (Stripe never reuses a customer id)."""
    customer_id = _ref(customer.get("id"), "the customer's id")
    if await forget_customer(conn, customer_id) is None:
        return Outcome("ignored", f"no account holds customer {customer_id}")
    return None


# -- auto top-up (auto_top_up.py): the saved card, and the off-session charges' outcomes ---------


def _top_up_id(obj: dict[str, Any]) -> int | None:
    """The auto top-up a PaymentIntent charges (its metadata, set by this service), or None for
    one this service's auto top-up did not create (a Checkout purchase's, another integration's)."""
    found = obj.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    value = metadata.get("auto_top_up_id") if metadata.get("kind") == "auto_top_up" else None
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


async def setup_intent_succeeded(conn: Conn, intent: dict[str, Any], event: EventInfo) -> Outcome | None:
    """A card saved for auto top-up: kept when the SetupIntent is this service's (its metadata) and
    its customer is the wallet's own Stripe customer."""
    metadata = _dict(intent.get("metadata"), "metadata")
    if metadata.get("kind") != "auto_top_up":
        return Outcome("ignored", "not a card saved for auto top-up")
    user_id = _user_id(metadata.get("user_id"), "metadata user_id")
    customer = _ref(intent.get("customer"), "the setup intent's customer")
    method = _ref(intent.get("payment_method"), "the setup intent's payment_method")
    if not re.fullmatch(r"pm_[A-Za-z0-9_]{1,250}", method):
        raise MalformedEvent("the setup intent's payment_method is not a payment method id")
    if intent.get("status") != "succeeded":
        return Outcome("ignored", f"setup intent status {str(intent.get('status'))[:40]}")
    await users.lock_account(conn, user_id)
    wallet = await conn.fetchrow(query("stripe_customer_of_user"), user_id)
    if wallet is None or wallet["stripe_customer_id"] != customer:
        raise MalformedEvent(f"customer {customer} is not the wallet's Stripe customer")
    await conn.execute(query("save_auto_top_up_card"), user_id, method, customer)
    return None


async def payment_intent_succeeded(conn: Conn, intent: dict[str, Any], event: EventInfo) -> Outcome | None:
    top_up = _top_up_id(intent)
    if top_up is None:
        return Outcome("ignored", "not an auto top-up (purchases are applied from their checkout)")
    result = await conn.fetchval(
        "SELECT ledger_auto_top_up_paid($1, $2, $3, $4, $5, $6)",
        top_up,
        _ref(intent.get("id"), "the payment intent's id"),
        _cents(intent, "amount_received", required=False) or _cents(intent, "amount"),
        _currency(intent),
        _ref(intent.get("customer"), "the payment intent's customer", required=False),
        _ref(intent.get("latest_charge"), "the payment intent's charge", required=False),
    )
    if result == "unknown":
        raise MalformedEvent(f"no auto top-up {top_up}")
    if result == "review":
        return Outcome("review", f"auto top-up {top_up} was charged other than it was asked to be")
    return Outcome("ignored", "the auto top-up was credited already") if result == "duplicate" else None


async def payment_intent_failed(conn: Conn, intent: dict[str, Any], event: EventInfo) -> Outcome | None:
    top_up = _top_up_id(intent)
    if top_up is None:
        return Outcome("ignored", "not an auto top-up")
    last = intent.get("last_payment_error")
    error: dict[str, Any] = last if isinstance(last, dict) else {}
    code = str(error.get("code") or error.get("decline_code") or "payment_failed")[:100]
    message = str(error.get("message") or "the charge failed")[:500]
    await conn.fetchval(
        "SELECT ledger_auto_top_up_failed($1, $2, $3, $4)", top_up, code, message, _ref(intent.get("id"), "the id")
    )
    return None


HANDLERS: dict[str, Handler] = {
    "setup_intent.succeeded": setup_intent_succeeded,
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "customer.deleted": customer_deleted,
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_completed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "invoice.paid": invoice_paid,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.paused": subscription_changed,
    "customer.subscription.resumed": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
}


# -- receiving ----------------------------------------------------------------------------------

# What a handler raises for an event it can never apply: its own checks, the ledger's (an unknown
# user, a bad amount), and the database refusing a value. Connection failures are not among them:
# those propagate, the webhook answers 5xx, and Stripe retries.
REJECTIONS = (
    MalformedEvent,
    LedgerError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ArithmeticError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


async def _store_unapplied(conn: Conn, event: EventInfo, payload: str, livemode: bool, outcome: Outcome) -> None:
    """Keep an event that was not applied (deferred or rejected) with its reason; an event already
    final stays as it is."""
    await conn.execute(
        query("store_unapplied_event"),
        event.id,
        event.type,
        payload,
        livemode,
        outcome.status,
        outcome.detail[:2000],
        _created_at(event.created),
        outcome.reference,
    )


def _created_at(created: Any) -> datetime | None:
    try:
        return _at(_unix(created, "created"))
    except MalformedEvent:
        return None


def _rejected_reference(event: EventInfo, obj: Any) -> str | None:
    """The payment intent of a rejected checkout: its refunds and disputes then have nothing to wait for."""
    if not event.type.startswith("checkout.session.") or not isinstance(obj, dict):
        return None
    try:
        return _ref(obj.get("payment_intent"), "payment_intent", required=False)
    except MalformedEvent:
        return None


async def receive_event(pool: asyncpg.Pool, event: dict[str, Any]) -> Outcome:
    """Store and apply one verified event. Raises MalformedEvent (nothing written) only for an event
    without a usable id or type; anything else it cannot apply is stored as rejected. Returns a
    deferred Outcome (event kept, nothing applied) when its target is not known yet."""
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not _STRIPE_ID.fullmatch(event_id):
        raise MalformedEvent("an event needs an id (a Stripe id)")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise MalformedEvent("an event needs a type")
    info = EventInfo(event_id, event_type, event.get("created"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    try:
        payload = json.dumps(_storable(event))
    except (RecursionError, ValueError):
        raise MalformedEvent("the event cannot be stored") from None
    livemode = event.get("livemode") is True
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(
                    query("insert_stripe_event"),
                    event_id,
                    event_type,
                    payload,
                    livemode,
                    _created_at(info.created),
                )
                status = await conn.fetchval(query("lock_stripe_event"), event_id)
                if status in FINAL:
                    return Outcome("duplicate", status)
                handler = HANDLERS.get(event_type)
                if handler is None:
                    outcome = Outcome("ignored")
                else:
                    if not isinstance(obj, dict):
                        raise MalformedEvent("the event has no data.object")
                    outcome = await handler(conn, obj, info) or Outcome("processed")
                await conn.execute(
                    query("record_event_outcome"),
                    event_id,
                    outcome.status,
                    outcome.detail[:2000] or None,
                )
                if outcome.status in ("stale", "review"):
                    log.info("stripe event %s (%s) %s: %s", event_id, event_type, outcome.status, outcome.detail)
                return outcome
        except Deferred as exc:
            outcome = Outcome("deferred", str(exc))
            await _store_unapplied(conn, info, payload, livemode, outcome)
            log.info("stripe event %s (%s) deferred: %s", event_id, event_type, exc)
            return outcome
        except REJECTIONS as exc:
            reason = exc.message if isinstance(exc, LedgerError) else str(exc) or type(exc).__name__
            if not isinstance(exc, MalformedEvent | LedgerError):
                # a bug or a database refusal: the details (SQL, constraint names) go to the log,
                # never into the answer or the stored reason
                log.exception("stripe event %s (%s) could not be applied", event_id, event_type)
                reason = f"the event could not be applied ({type(exc).__name__}; see the service's log)"
            outcome = Outcome("rejected", reason, _rejected_reference(info, obj))
            await _store_unapplied(conn, info, payload, livemode, outcome)
            log.warning("stripe event %s (%s) rejected: %s", event_id, event_type, reason)
            return outcome

"""Auto top-up (migration 0024): a card saved through Stripe Checkout in setup mode is charged
off-session for a credit package when what is left to spend falls below a threshold.

The top-up is queued by the wallet's own write (a trigger), so it happens once per crossing and
never twice in flight; this module's worker charges it with its own idempotency key (a retried
call never charges twice) and records a decline at once; the credits come only from the signed
payment_intent.succeeded webhook (events.py), under the purchase rules."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict, cast

import asyncpg
import stripe

from ledger.billing.checkout import CURRENCY, StripeReplyInvalid, ensure_customer, web_url
from ledger.db.background import log_failed_pass
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument
from ledger.money.values import AMOUNT_TEXT

log = logging.getLogger("ledger.billing")
LEASE_SECONDS = 120
MOST_CREDITS = Decimal("1e12")


class TopUpSettings(TypedDict):
    user_id: uuid.UUID
    enabled: bool
    threshold: Decimal | None
    package_id: uuid.UUID | None
    monthly_limit: Decimal | None
    payment_method_id: str | None
    consecutive_failures: int
    next_try_at: datetime | None
    disabled_reason: str | None
    updated_at: datetime
    package_name: str | None
    package_credits: Decimal | None
    package_price_usd: Decimal | None


def _credits(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        if not AMOUNT_TEXT.fullmatch(str(value).strip()):  # Decimal() alone reads "1_000", "٣", "1e3"
            raise ValueError(value)
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidArgument(f'{name} must be a number of credits, as a string: "5".', param=name) from None
    if not amount.is_finite() or amount <= 0 or amount >= MOST_CREDITS or amount != amount.quantize(Decimal("1e-6")):
        raise InvalidArgument(f"{name} must be above 0 and below 10^12 credits, at most 6 decimals.", param=name)
    return amount


async def settings_of(db: Executor, wallet: uuid.UUID) -> TopUpSettings | None:
    row = await db.fetchrow(query("auto_top_up_settings_of"), wallet)
    return None if row is None else cast(TopUpSettings, dict(row))


@dataclass(frozen=True, slots=True)
class TopUpChange:
    enabled: bool
    threshold: object = None
    package_id: uuid.UUID | None = None
    monthly_limit: object = None


async def configure(db: Executor, wallet: uuid.UUID, change: TopUpChange, by: uuid.UUID | None) -> TopUpSettings:
    """Saves the settings (run in the caller's `acting` transaction: audited). Turning it on needs a
    saved card, a threshold, a package on sale and a monthly limit at least that package's credits;
    a wallet already below the threshold is topped up at once."""
    threshold, limit = _credits(change.threshold, "threshold"), _credits(change.monthly_limit, "monthly_limit")
    current = await settings_of(db, wallet)
    if change.enabled:
        if current is None or current["payment_method_id"] is None:
            raise InvalidArgument("Save a card first (POST /v1/organization/auto_top_up/card).", param="enabled")
        package_id = change.package_id or current["package_id"]
        package = None if package_id is None else await db.fetchrow(query("credit_package_for_sale"), package_id)
        if package is None:
            raise InvalidArgument("package_id must be a credit package on sale.", param="package_id")
        if (threshold or current["threshold"]) is None:
            raise InvalidArgument("threshold is needed to turn auto top-up on.", param="threshold")
        limit_now = limit or current["monthly_limit"]
        if limit_now is None or limit_now < package["credits"]:
            raise InvalidArgument(
                f"monthly_limit must be at least the package's {package['credits']} credits.", param="monthly_limit"
            )
    elif (
        change.package_id is not None and await db.fetchrow(query("credit_package_for_sale"), change.package_id) is None
    ):
        raise InvalidArgument("package_id must be a credit package on sale.", param="package_id")
    await db.fetchval(
        query("save_auto_top_up_settings"), wallet, change.enabled, threshold, change.package_id, limit, by
    )
    if change.enabled:  # already below: the crossing happened before; top up now
        await db.fetchval("SELECT ledger_start_auto_top_up(ledger_lock_user($1))", wallet)
    return cast(TopUpSettings, await settings_of(db, wallet))


async def card_setup(
    db: Executor, client: stripe.StripeClient, wallet: uuid.UUID, success_url: str, cancel_url: str
) -> dict[str, str]:
    """A Stripe Checkout Session in setup mode: the card saved there is the one auto top-up charges
    (setup_intent.succeeded carries it back, signed)."""
    customer = await ensure_customer(db, client, wallet)
    metadata = {"user_id": str(wallet), "kind": "auto_top_up"}
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "setup",
            "currency": CURRENCY,
            "customer": customer,
            "client_reference_id": str(wallet),
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    url = web_url(getattr(session, "url", None))
    if url is None:
        raise StripeReplyInvalid("Stripe's setup session has no usable http(s) url")
    return {"id": str(getattr(session, "id", "")), "url": url}


async def top_ups_of(db: Executor, wallet: uuid.UUID, limit: int = 20) -> list[dict[str, Any]]:
    return [dict(row) for row in await db.fetch(query("auto_top_ups_of_wallet"), wallet, limit)]


def _decline(error: stripe.CardError) -> tuple[str, str, str | None]:
    """(code, message, payment intent id) of a declined off-session charge."""
    body = error.json_body if isinstance(error.json_body, dict) else {}
    details = body.get("error") if isinstance(body.get("error"), dict) else {}
    intent = details.get("payment_intent") if isinstance(details, dict) else None
    intent_id = intent.get("id") if isinstance(intent, dict) else None
    code = str(error.code or (details or {}).get("decline_code") or "card_error")
    message = str((details or {}).get("message") or error.user_message or "the card was declined")
    return code[:100], message[:500], intent_id if isinstance(intent_id, str) else None


async def charge(pool: asyncpg.Pool, client: stripe.StripeClient, row: asyncpg.Record) -> str:
    """One off-session PaymentIntent for a queued top-up: 'charged' (the webhook credits it),
    'declined' (recorded, told, backed off) or 'retry' (Stripe unreachable: the next pass sends the
    same idempotency key)."""
    metadata = {
        "user_id": str(row["user_id"]),
        "auto_top_up_id": str(row["id"]),
        "credits": str(row["credits"]),
        "kind": "auto_top_up",
    }
    try:
        intent = await client.v1.payment_intents.create_async(
            {
                "amount": int(row["amount_cents"]),
                "currency": row["currency"],
                "customer": row["stripe_customer_id"],
                "payment_method": row["payment_method_id"],
                "off_session": True,
                "confirm": True,
                "metadata": metadata,
                "description": f"Auto top-up: {row['credits'].normalize():f} credits",
            },
            {"idempotency_key": row["idempotency_key"]},
        )
    except stripe.CardError as error:
        code, message, intent_id = _decline(error)
        await pool.fetchval("SELECT ledger_auto_top_up_failed($1, $2, $3, $4)", row["id"], code, message, intent_id)
        log.warning("auto top-up %s declined: %s", row["id"], code)
        return "declined"
    except stripe.InvalidRequestError as error:  # a card detached, a customer gone: it cannot charge
        await pool.fetchval(
            "SELECT ledger_auto_top_up_failed($1, $2, $3, NULL)",
            row["id"],
            str(error.code or "invalid_request")[:100],
            "Stripe refused the charge: the saved card or customer is no longer usable; save a card again.",
        )
        return "declined"
    except stripe.StripeError as error:
        log.warning("auto top-up %s: Stripe unreachable (%s); retrying", row["id"], type(error).__name__)
        return "retry"
    intent_id = getattr(intent, "id", None)
    if isinstance(intent_id, str):
        await pool.execute(query("auto_top_up_charged"), row["id"], intent_id)
    return "charged"


async def charge_due(pool: asyncpg.Pool, client: stripe.StripeClient, batch: int = 20) -> int:
    rows = await pool.fetch(query("claim_pending_auto_top_ups"), batch, LEASE_SECONDS)
    for row in rows:
        await charge(pool, client, row)
    return len(rows)


async def run_forever(pool: asyncpg.Pool, client: stripe.StripeClient, interval_seconds: float) -> None:
    while True:
        try:
            busy = await charge_due(pool, client)
        except Exception:
            log_failed_pass(log, "auto top-up pass", interval_seconds)
            busy = 0
        if not busy:
            await asyncio.sleep(interval_seconds)

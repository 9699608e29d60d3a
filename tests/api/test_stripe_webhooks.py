"""POST /webhooks/stripe: signed events applied exactly once, in any order, never below zero."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx
import pytest

from ledger.money.credits import debit_user_credits
from ledger.money.holds import reserve_credits
from tests.api.ledger_state import assert_reconciled, balance
from tests.fake_stripe import event, sign

SUCCESS = {"success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel"}
PERIOD_1 = 1_790_000_000  # a period start, as a Unix time


def recent_periods() -> tuple[int, int]:
    """Two paid periods that start after a user created now: the cycle only moves forward."""
    now = int(time.time())
    return now + 60, now + 120


@pytest.fixture
def service(upstreams, start_service, fake_stripe):
    return start_service(upstreams, stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)


async def checkout(pool, service, fake_stripe, account, package: str = "Value Pack") -> dict:
    package_id = await pool.fetchval("SELECT id FROM credit_packages WHERE name = $1", package)
    response = service.post("/v1/credits/checkout", account.key, {"package_id": str(package_id), **SUCCESS})
    assert response.status_code == 201, response.text
    return fake_stripe.sessions[response.json()["id"]]


def paid(session: dict, payment_intent: str = "pi_1") -> dict:
    return {**session, "status": "complete", "payment_status": "paid", "payment_intent": payment_intent}


def charge(payment_intent: str, amount: int, refunded: int) -> dict:
    return {
        "id": f"ch_{payment_intent}",
        "object": "charge",
        "payment_intent": payment_intent,
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded == amount,
    }


def dispute(dispute_id: str, payment_intent: str, amount: int, status: str) -> dict:
    return {
        "id": dispute_id,
        "object": "dispute",
        "charge": f"ch_{payment_intent}",
        "payment_intent": payment_intent,
        "amount": amount,
        "status": status,
    }


async def test_a_full_purchase_credits_the_package(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = await checkout(pool, service, fake_stripe, account)

    response = service.webhook(event("checkout.session.completed", paid(session)))

    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert await balance(pool, account.user_id) == 500
    (txn,) = service.get("/v1/credits/transactions", account.key).json()["data"]
    assert (txn["transaction_type"], txn["amount"], txn["reference_id"]) == ("purchase", "500.000000", "pi_1")
    assert txn["description"] == "Purchased Value Pack"
    payment = await pool.fetchrow("SELECT * FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert (payment["status"], payment["amount_cents"], payment["credits"]) == ("paid", 4500, 500)
    await assert_reconciled(pool)


async def test_one_event_delivered_five_times_credits_once(pool, service, fake_stripe, make_account):
    account = await make_account()
    completed = event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account)))

    statuses = [service.webhook(completed).json()["status"] for _ in range(5)]

    assert statuses == ["processed"] + ["duplicate"] * 4
    assert await balance(pool, account.user_id) == 500


async def test_concurrent_deliveries_credit_once(pool, service, fake_stripe, make_account):
    account = await make_account()
    completed = event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account)))
    body = json.dumps(completed)
    again = event("checkout.session.completed", completed["data"]["object"])  # another event, same payment

    async def deliver(payload: str) -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{service.url}/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload)}
            )
            return response.status_code

    codes = await asyncio.gather(*(deliver(body) for _ in range(5)), *(deliver(json.dumps(again)) for _ in range(3)))

    assert codes == [200] * 8
    assert await balance(pool, account.user_id) == 500
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE transaction_type = 'purchase'") == 1
    assert await pool.fetchval("SELECT count(*) FROM stripe_events") == 2


@pytest.mark.parametrize("signature", [None, "t=1,v1=deadbeef", "garbage", "stale", "other-secret"])
async def test_a_bad_missing_or_stale_signature_is_a_400_and_writes_nothing(
    pool, service, fake_stripe, make_account, signature
):
    account = await make_account()
    body = json.dumps(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))
    if signature == "stale":
        signature = sign(body, timestamp=int(time.time()) - 600)
    elif signature == "other-secret":
        signature = sign(body, secret="whsec_someone_else")

    response = service.webhook(body, signature=signature)

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    assert await pool.fetchval("SELECT count(*) FROM stripe_events") == 0
    assert await balance(pool, account.user_id) == 0


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        json.dumps(["an", "array"]),
        json.dumps({"type": "checkout.session.completed", "data": {"object": {}}}),
        json.dumps({"id": "evt_" + "x" * 5000, "type": "checkout.session.completed", "data": {"object": {}}}),
        json.dumps({"id": {"nested": 1}, "type": "checkout.session.completed"}),
        json.dumps({"id": "evt_no_type", "type": ["a"]}),
    ],
    ids=["malformed-json", "not-an-object", "no-id", "huge-id", "id-not-a-string", "type-not-a-string"],
)
async def test_events_without_a_usable_id_are_400_and_write_nothing(pool, service, make_account, body):
    account = await make_account(credits_="10")

    response = service.webhook(body)

    assert 400 <= response.status_code < 500
    assert await pool.fetchval("SELECT count(*) FROM stripe_events") == 0
    assert await balance(pool, account.user_id) == 10


@pytest.mark.parametrize(
    ("event_type", "obj", "reason"),
    [
        ("checkout.session.completed", None, "no data.object"),
        (
            "checkout.session.completed",
            {"id": "cs_1", "mode": "payment", "payment_status": "paid", "payment_intent": "pi_9", "amount_total": 1000},
            "user_id",
        ),
        ("charge.refunded", {"id": "ch_1", "payment_intent": "pi_9", "amount": 1000}, "amount_refunded"),
    ],
    ids=["no-data", "no-metadata", "no-amount-refunded"],
)
async def test_signed_events_that_can_never_apply_are_stored_rejected_and_answered_2xx(
    pool, service, make_account, event_type, obj, reason
):
    """Issue 8: these were 400s that wrote nothing, so Stripe retried them for days; now each is
    kept with its reason and answered 2xx."""
    account = await make_account(credits_="10")
    signed = event(event_type, obj) if obj is not None else {**event(event_type, {}), "data": {}}

    response = service.webhook(signed)
    again = service.webhook(signed)

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert reason in response.json()["detail"]
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    stored = await pool.fetchrow("SELECT status, last_error FROM stripe_events WHERE id = $1", signed["id"])
    assert stored["status"] == "rejected" and reason in stored["last_error"]
    assert await balance(pool, account.user_id) == 10


async def test_an_unpaid_checkout_credits_nothing_until_paid(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = {
        **await checkout(pool, service, fake_stripe, account),
        "payment_intent": "pi_async",
        "status": "complete",
    }

    service.webhook(event("checkout.session.completed", session))
    assert await balance(pool, account.user_id) == 0
    service.webhook(event("checkout.session.async_payment_succeeded", paid(session, "pi_async")))

    assert await balance(pool, account.user_id) == 500


async def test_a_partial_then_a_full_refund(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))

    partial = event("charge.refunded", charge("pi_1", 4500, 1500))
    service.webhook(partial)
    assert await balance(pool, account.user_id) == Decimal("333.333333")  # a third of 500 credits
    service.webhook(event("charge.refunded", charge("pi_1", 4500, 1500)))  # the same refund, reported again
    assert await balance(pool, account.user_id) == Decimal("333.333333")
    service.webhook(event("charge.refunded", charge("pi_1", 4500, 4500)))

    assert await balance(pool, account.user_id) == 0
    refunds = await pool.fetch("SELECT amount FROM credit_transactions WHERE transaction_type = 'refund' ORDER BY id")
    assert [r["amount"] for r in refunds] == [Decimal("-166.666667"), Decimal("-333.333333")]
    payment = await pool.fetchrow("SELECT * FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert (payment["status"], payment["refunded_cents"], payment["credits_refunded"]) == ("refunded", 4500, 500)
    await assert_reconciled(pool)


async def test_a_refund_after_the_credits_were_spent_stops_at_zero_and_records_the_shortfall(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    service.webhook(
        event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account, "Starter Pack")))
    )
    await debit_user_credits(pool, account.user_id, 80, "usage", "req_spent")

    response = service.webhook(event("charge.refunded", charge("pi_1", 1000, 1000)))

    assert response.status_code == 200
    assert await balance(pool, account.user_id) == 0
    payment = await pool.fetchrow("SELECT * FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert (payment["credits_refunded"], payment["refund_shortfall"]) == (100, 80)
    await assert_reconciled(pool)


async def test_a_won_dispute_holds_then_releases_the_credits(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(
        event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account, "Starter Pack")))
    )

    service.webhook(event("charge.dispute.created", dispute("dp_1", "pi_1", 1000, "needs_response")))
    held = await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id)
    blocked = await reserve_credits(pool, account.user_id, 1, "req_during_dispute")
    service.webhook(event("charge.dispute.closed", dispute("dp_1", "pi_1", 1000, "won")))

    assert held == 100 and not blocked.success
    assert await balance(pool, account.user_id) == 100
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    assert (await reserve_credits(pool, account.user_id, 1, "req_after_dispute")).success
    await assert_reconciled(pool)


async def test_a_lost_dispute_refunds_the_credits(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(
        event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account, "Starter Pack")))
    )

    service.webhook(event("charge.dispute.created", dispute("dp_1", "pi_1", 1000, "needs_response")))
    service.webhook(event("charge.dispute.closed", dispute("dp_1", "pi_1", 1000, "lost")))

    assert await balance(pool, account.user_id) == 0
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    (refund,) = await pool.fetch("SELECT * FROM credit_transactions WHERE transaction_type = 'refund'")
    assert refund["amount"] == -100 and refund["reference_id"] == "dispute:dp_1"
    await assert_reconciled(pool)


async def test_several_disputes_in_parallel_never_take_more_than_the_purchase(pool, service, fake_stripe, make_account):
    """Three disputes of one 100-credit purchase, sent at once, hold 100 in total and, all lost,
    take back 100, not 300; a refund arriving after them takes nothing more."""
    account = await make_account(credits_="500")
    service.webhook(
        event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account, "Starter Pack")))
    )
    ids = ["dp_a", "dp_b", "dp_c"]

    async def all_at_once(kind: str, status: str) -> None:
        sends = (asyncio.to_thread(service.webhook, event(kind, dispute(d, "pi_1", 1000, status))) for d in ids)
        assert all(r.status_code == 200 for r in await asyncio.gather(*sends))

    await all_at_once("charge.dispute.created", "needs_response")
    held = await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id)
    await all_at_once("charge.dispute.closed", "lost")
    service.webhook(event("charge.refunded", charge("pi_1", 1000, 1000)))

    assert held == 100
    assert await balance(pool, account.user_id) == 500
    taken = await pool.fetchval("SELECT -sum(amount) FROM credit_transactions WHERE transaction_type = 'refund'")
    assert taken == 100
    await assert_reconciled(pool)


async def test_a_session_paid_again_with_another_payment_intent_is_rejected_with_a_reason(
    pool, service, fake_stripe, make_account, caplog
):
    account = await make_account()
    session = await checkout(pool, service, fake_stripe, account, "Starter Pack")
    service.webhook(event("checkout.session.completed", paid(session, "pi_1")))

    response = service.webhook(event("checkout.session.completed", paid(session, "pi_2")))

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert response.json()["detail"] == f"checkout session {session['id']} was already paid with payment intent pi_1"
    assert await balance(pool, account.user_id) == 100
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    await assert_reconciled(pool)


def invoice(account, subscription_id: str, tier: str, period_start: int) -> dict:
    return {
        "id": f"in_{period_start}",
        "object": "invoice",
        "customer": None,
        "subscription": subscription_id,
        "billing_reason": "subscription_cycle",
        "lines": {
            "data": [
                {
                    "period": {"start": period_start, "end": period_start + 2_592_000},
                    "metadata": {"user_id": str(account.user_id), "tier": tier},
                }
            ]
        },
    }


def subscription(account, subscription_id: str, tier: str, status: str = "active") -> dict:
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": None,
        "status": status,
        "metadata": {"user_id": str(account.user_id), "tier": tier},
        "items": {"data": []},
    }


async def test_a_subscription_paid_upgraded_renewed_and_cancelled(pool, service, make_account):
    account = await make_account()
    period_1, period_2 = recent_periods()

    async def state():
        return await pool.fetchrow(
            "SELECT tier, monthly_allowance, credits_used_this_month, billing_cycle_start"
            " FROM user_credits WHERE user_id = $1",
            account.user_id,
        )

    service.webhook(event("invoice.paid", invoice(account, "sub_1", "starter", period_1)))
    first = await state()
    await pool.execute("UPDATE user_credits SET billing_cycle_start = now() WHERE user_id = $1", account.user_id)
    await debit_user_credits(pool, account.user_id, 300, "usage", "req_month_1")
    service.webhook(event("customer.subscription.updated", subscription(account, "sub_1", "professional")))
    upgraded = await state()
    service.webhook(event("invoice.paid", invoice(account, "sub_1", "professional", period_2)))
    renewed = await state()
    during = service.get("/v1/credits/balance", account.key).json()
    service.webhook(event("customer.subscription.deleted", subscription(account, "sub_1", "professional", "canceled")))
    cancelled = await state()

    assert (first["tier"], first["monthly_allowance"]) == ("starter", 1000)
    assert first["billing_cycle_start"].timestamp() == period_1
    assert (upgraded["tier"], upgraded["monthly_allowance"], upgraded["credits_used_this_month"]) == (
        "professional",
        10000,
        300,
    ), "an upgrade keeps the cycle and what was used in it"
    assert renewed["credits_used_this_month"] == 0 and renewed["billing_cycle_start"].timestamp() == period_2
    assert (cancelled["tier"], cancelled["monthly_allowance"]) == ("trial", 100)
    assert during["subscription"]["tier"] == "professional" and during["subscription"]["status"] == "active"
    assert during["monthly_allowance"] == "10000.000000" and during["allowance_remaining"] == "10000.000000"
    body = service.get("/v1/credits/balance", account.key).json()
    assert body["tier"] == "trial" and body["monthly_allowance"] == "100.000000"
    assert body["subscription"]["status"] == "canceled"
    assert await pool.fetchval("SELECT status FROM stripe_subscriptions WHERE subscription_id = 'sub_1'") == "canceled"


async def test_a_subscription_user_is_found_by_stripe_customer(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.post("/v1/subscriptions/checkout", account.key, {"tier": "starter", **SUCCESS})
    customer = await pool.fetchval("SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", account.user_id)
    paid_invoice = invoice(account, "sub_2", "starter", PERIOD_1)
    paid_invoice["customer"] = customer
    paid_invoice["lines"]["data"][0]["metadata"] = {"tier": "starter"}

    response = service.webhook(event("invoice.paid", paid_invoice))

    assert response.status_code == 200
    assert await pool.fetchval("SELECT tier FROM user_credits WHERE user_id = $1", account.user_id) == "starter"


async def test_a_refund_before_its_checkout_is_kept_and_applied_when_retried(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = await checkout(pool, service, fake_stripe, account, "Starter Pack")
    early_refund = event("charge.refunded", charge("pi_1", 1000, 500))

    early = service.webhook(early_refund)
    assert early.status_code == 409, "non-2xx: Stripe will deliver it again"
    assert await pool.fetchval("SELECT status FROM stripe_events WHERE id = $1", early_refund["id"]) == "deferred"
    service.webhook(event("checkout.session.completed", paid(session)))
    retried = service.webhook(early_refund)

    assert retried.status_code == 200 and retried.json()["status"] == "processed"
    assert await balance(pool, account.user_id) == 50
    await assert_reconciled(pool)


async def test_an_unknown_event_type_is_stored_and_ignored(pool, service):
    unknown = event("customer.tax_id.created", {"id": "txi_1"})

    response = service.webhook(unknown)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert await pool.fetchval("SELECT status FROM stripe_events WHERE id = $1", unknown["id"]) == "ignored"


async def test_webhooks_are_503_without_a_webhook_secret(upstreams, start_service):
    service = start_service(upstreams, stripe_webhook_secret=None)

    response = service.webhook(event("checkout.session.completed", {"id": "cs_1"}))

    assert response.status_code == 503


async def test_partial_refunds_arriving_at_once_in_any_order_add_up_exactly(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))
    # 4500 cents for 500 credits: thirds of the money are not whole credits at 6 places
    bodies = [json.dumps(event("charge.refunded", charge("pi_1", 4500, cents))) for cents in (2000, 700, 1000, 3000)]

    async def deliver(body: str) -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{service.url}/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
            )
            return response.status_code

    codes = await asyncio.gather(*(deliver(b) for b in bodies))

    assert codes == [200] * 4
    payment = await pool.fetchrow("SELECT * FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert payment["refunded_cents"] == 3000
    assert payment["credits_refunded"] == Decimal("333.333333")  # 500 x 3000 / 4500, rounded once
    assert await balance(pool, account.user_id) == Decimal("166.666667")
    await assert_reconciled(pool)


async def test_the_balance_shows_the_subscription_that_gives_the_tier(pool, service, make_account):
    account = await make_account()
    service.webhook(event("customer.subscription.updated", subscription(account, "sub_old", "starter")))
    service.webhook(event("customer.subscription.updated", subscription(account, "sub_new", "professional")))
    # the old one ends last: it is the most recently updated, but no longer what the user has
    service.webhook(event("customer.subscription.deleted", subscription(account, "sub_old", "starter", "canceled")))

    body = service.get("/v1/credits/balance", account.key).json()

    assert body["tier"] == "professional"
    assert (body["subscription"]["id"], body["subscription"]["status"]) == ("sub_new", "active")

"""Issue 8, section 2: Stripe events in any order and with any status, purchases checked against
their package, and signed events that can never apply stored as rejected, never a 500."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ledger.billing.events import HANDLERS
from ledger.money.credits import debit_user_credits
from tests.api.test_signals import metric
from tests.api.test_stripe_webhooks import (
    assert_reconciled,
    balance,
    charge,
    checkout,
    dispute,
    invoice,
    paid,
    recent_periods,
    subscription,
)
from tests.fake_stripe import event


@pytest.fixture
def service(upstreams, start_service, fake_stripe):
    return start_service(upstreams, stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)


def at(created: int, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {**event(event_type, obj), "created": created}


async def user_state(pool, user_id) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT tier, monthly_allowance, credits_used_this_month, billing_cycle_start FROM user_credits"
        " WHERE user_id = $1",
        user_id,
    )
    return dict(row)


async def event_status(pool, evt: dict[str, Any]) -> str:
    return await pool.fetchval("SELECT status FROM stripe_events WHERE id = $1", evt["id"])


# -- subscriptions ------------------------------------------------------------------------------


async def test_a_late_update_after_the_deletion_never_gives_the_tier_back(pool, service, make_account):
    account = await make_account()
    now = int(time.time())
    updated = at(now - 10, "customer.subscription.updated", subscription(account, "sub_1", "enterprise"))
    deleted = at(now, "customer.subscription.deleted", subscription(account, "sub_1", "enterprise", "canceled"))

    service.webhook(deleted)
    late = service.webhook(updated)

    assert late.status_code == 200 and late.json()["status"] == "stale"
    assert await event_status(pool, updated) == "stale"
    state = await user_state(pool, account.user_id)
    assert (state["tier"], state["monthly_allowance"]) == ("trial", 100)
    row = await pool.fetchrow("SELECT status FROM stripe_subscriptions WHERE subscription_id = 'sub_1'")
    assert row["status"] == "canceled"


async def test_a_canceled_subscription_stays_canceled_even_for_a_newer_event(pool, service, make_account):
    """canceled is final in Stripe: an event that says otherwise, whatever its time, changes nothing."""
    account = await make_account()
    now = int(time.time())
    service.webhook(at(now, "customer.subscription.deleted", subscription(account, "sub_1", "starter", "canceled")))

    newer = service.webhook(at(now + 5, "customer.subscription.updated", subscription(account, "sub_1", "enterprise")))

    assert newer.json()["status"] == "stale"
    assert (await user_state(pool, account.user_id))["tier"] == "trial"


async def test_in_the_same_second_the_cancellation_wins(pool, service, make_account):
    account = await make_account()
    now = int(time.time())
    deleted = at(now, "customer.subscription.deleted", subscription(account, "sub_1", "enterprise", "canceled"))
    updated = at(now, "customer.subscription.updated", subscription(account, "sub_1", "enterprise"))

    service.webhook(deleted)
    service.webhook(updated)

    assert (await user_state(pool, account.user_id))["tier"] == "trial"
    assert await event_status(pool, updated) == "stale"


async def test_an_older_update_changes_nothing(pool, service, make_account):
    account = await make_account()
    now = int(time.time())
    service.webhook(at(now, "customer.subscription.updated", subscription(account, "sub_1", "starter")))

    older = at(now - 60, "customer.subscription.updated", subscription(account, "sub_1", "enterprise"))
    response = service.webhook(older)

    assert response.status_code == 200 and response.json()["status"] == "stale"
    assert (await user_state(pool, account.user_id))["tier"] == "starter"


@pytest.mark.parametrize(
    ("status", "tier"),
    [
        ("active", "professional"),
        ("trialing", "professional"),
        ("past_due", "professional"),  # the grace policy: Stripe is still retrying the payment
        ("incomplete", "trial"),
        ("incomplete_expired", "trial"),
        ("paused", "trial"),
        ("unpaid", "trial"),
        ("canceled", "trial"),
    ],
)
async def test_a_paid_tier_only_for_a_paid_status(pool, service, make_account, status, tier):
    account = await make_account()

    response = service.webhook(
        event("customer.subscription.updated", subscription(account, "sub_1", "professional", status))
    )

    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert (await user_state(pool, account.user_id))["tier"] == tier


async def test_an_unknown_subscription_status_is_rejected(pool, service, make_account):
    account = await make_account()

    response = service.webhook(
        event("customer.subscription.updated", subscription(account, "sub_1", "enterprise", "galactic"))
    )

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert (await user_state(pool, account.user_id))["tier"] == "trial"


async def test_a_late_invoice_for_the_previous_period_resets_nothing(pool, service, make_account):
    account = await make_account()
    period_1, period_2 = recent_periods()
    first = event("invoice.paid", invoice(account, "sub_1", "starter", period_1))
    service.webhook(first)
    service.webhook(event("invoice.paid", invoice(account, "sub_1", "starter", period_2)))
    await debit_user_credits(pool, account.user_id, 30, "usage", "req_1")
    before = await user_state(pool, account.user_id)

    late = event("invoice.paid", invoice(account, "sub_1", "starter", period_1))  # another event, same old period
    response = service.webhook(late)
    again = service.webhook(first)

    assert response.status_code == 200 and response.json()["status"] == "stale"
    assert again.json()["status"] == "duplicate"
    after = await user_state(pool, account.user_id)
    assert after == before
    assert after["billing_cycle_start"].timestamp() == period_2 and after["credits_used_this_month"] == 30


async def test_an_invoice_for_the_same_period_again_resets_nothing(pool, service, make_account):
    account = await make_account()
    period_1, _ = recent_periods()
    service.webhook(event("invoice.paid", invoice(account, "sub_1", "starter", period_1)))
    await debit_user_credits(pool, account.user_id, 30, "usage", "req_1")

    response = service.webhook(event("invoice.paid", invoice(account, "sub_1", "starter", period_1)))

    assert response.json()["status"] == "stale"
    assert (await user_state(pool, account.user_id))["credits_used_this_month"] == 30


async def test_another_subscriptions_invoice_for_an_older_period_resets_nothing(pool, service, make_account):
    account = await make_account()
    period_1, period_2 = recent_periods()
    service.webhook(event("invoice.paid", invoice(account, "sub_a", "starter", period_2)))
    await debit_user_credits(pool, account.user_id, 30, "usage", "req_1")

    response = service.webhook(event("invoice.paid", invoice(account, "sub_b", "professional", period_1)))

    assert response.json()["status"] == "processed"
    state = await user_state(pool, account.user_id)
    assert state["billing_cycle_start"].timestamp() == period_2 and state["credits_used_this_month"] == 30
    assert state["tier"] == "professional"


async def test_an_invoice_period_far_in_the_future_is_rejected(pool, service, make_account):
    account = await make_account()

    response = service.webhook(
        event("invoice.paid", invoice(account, "sub_1", "enterprise", int(time.time()) + 40 * 86400))
    )

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert (await user_state(pool, account.user_id))["tier"] == "trial"


async def test_a_late_invoice_after_the_cancellation_keeps_the_trial_tier(pool, service, make_account):
    account = await make_account()
    period_1, _ = recent_periods()
    now = int(time.time())
    service.webhook(at(now, "customer.subscription.deleted", subscription(account, "sub_1", "enterprise", "canceled")))

    service.webhook(at(now - 30, "invoice.paid", invoice(account, "sub_1", "enterprise", period_1)))

    assert (await user_state(pool, account.user_id))["tier"] == "trial"


async def test_ending_an_old_subscription_keeps_the_new_ones_tier(pool, service, make_account):
    account = await make_account()
    now = int(time.time())
    service.webhook(at(now, "customer.subscription.updated", subscription(account, "sub_old", "starter")))
    service.webhook(at(now + 1, "customer.subscription.updated", subscription(account, "sub_new", "professional")))

    service.webhook(
        at(now + 2, "customer.subscription.deleted", subscription(account, "sub_old", "starter", "canceled"))
    )

    assert (await user_state(pool, account.user_id))["tier"] == "professional"


async def test_an_invoice_for_an_unknown_customer_waits_until_the_customer_is_linked(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    period_1, _ = recent_periods()
    paid_invoice = invoice(account, "sub_2", "starter", period_1)
    paid_invoice["customer"] = "cus_later"
    paid_invoice["lines"]["data"][0]["metadata"] = {"tier": "starter"}
    early = event("invoice.paid", paid_invoice)

    first = service.webhook(early)
    await pool.execute("UPDATE user_credits SET stripe_customer_id = 'cus_later' WHERE user_id = $1", account.user_id)
    retried = service.webhook(early)

    assert first.status_code == 409 and retried.json()["status"] == "processed"
    assert (await user_state(pool, account.user_id))["tier"] == "starter"


# -- purchases ----------------------------------------------------------------------------------


async def test_a_session_in_another_currency_credits_nothing_and_is_kept_for_review(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    session = {**paid(await checkout(pool, service, fake_stripe, account)), "currency": "jpy"}
    completed = event("checkout.session.completed", session)

    response = service.webhook(completed)

    assert response.status_code == 200 and response.json()["status"] == "review"
    assert "currency jpy" in response.json()["detail"]
    assert await balance(pool, account.user_id) == 0
    payment = await pool.fetchrow("SELECT status, review_reason FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert payment["status"] == "review" and "jpy" in payment["review_reason"]
    assert await event_status(pool, completed) == "review"
    text = httpx.get(f"{service.url}/metrics").text
    assert metric(text, "ledger_webhook_events_total", type="checkout.session.completed", result="review") == 1


@pytest.mark.parametrize("amount_total", [1, 4499, 4501, 450000])
async def test_a_session_for_another_amount_credits_nothing(pool, service, fake_stripe, make_account, amount_total):
    account = await make_account()
    session = {**paid(await checkout(pool, service, fake_stripe, account)), "amount_total": amount_total}

    response = service.webhook(event("checkout.session.completed", session))

    assert response.status_code == 200 and response.json()["status"] == "review"
    assert await balance(pool, account.user_id) == 0


async def test_the_credits_are_the_packages_and_a_session_claiming_others_goes_to_review(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    session = paid(await checkout(pool, service, fake_stripe, account))
    session["metadata"] = {**session["metadata"], "credits": "50000"}

    response = service.webhook(event("checkout.session.completed", session))

    assert response.json()["status"] == "review"
    assert await balance(pool, account.user_id) == 0


async def test_a_paid_async_payment_after_review_still_credits_nothing(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = {**await checkout(pool, service, fake_stripe, account), "payment_intent": "pi_1", "currency": "eur"}
    service.webhook(event("checkout.session.completed", session))

    response = service.webhook(event("checkout.session.async_payment_succeeded", paid(session)))

    assert response.json()["status"] == "review"
    assert await balance(pool, account.user_id) == 0


async def test_a_price_change_between_checkout_and_payment_honours_the_price_shown(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    session = await checkout(pool, service, fake_stripe, account)
    await pool.execute("UPDATE credit_packages SET price_usd = 55.00, is_active = false WHERE name = 'Value Pack'")

    response = service.webhook(event("checkout.session.completed", paid(session)))

    assert session["metadata"]["price_cents"] == "4500" and session["metadata"]["currency"] == "usd"
    assert response.json()["status"] == "processed"
    assert await balance(pool, account.user_id) == 500


async def test_the_price_recorded_at_checkout_decides_not_the_sessions_metadata(
    pool, service, fake_stripe, make_account
):
    """A session carrying its own price in its metadata (price_cents 1, amount_total 1) credits
    nothing: the price this service recorded when it created the session decides."""
    account = await make_account()
    session = paid(await checkout(pool, service, fake_stripe, account))
    session = {**session, "amount_total": 1, "metadata": {**session["metadata"], "price_cents": "1"}}

    response = service.webhook(event("checkout.session.completed", session))

    assert response.status_code == 200 and response.json()["status"] == "review"
    assert "not the price the session was sold at (4500)" in response.json()["detail"]
    assert await balance(pool, account.user_id) == 0


async def test_a_session_this_service_did_not_create_credits_nothing(pool, service, fake_stripe, make_account):
    """Another integration's session (or a payment link) on the same Stripe account, carrying our
    metadata keys and the right price, is kept for review: only sessions recorded at creation count."""
    account = await make_account()
    recorded = paid(await checkout(pool, service, fake_stripe, account))
    foreign = {**recorded, "id": "cs_not_ours", "payment_intent": "pi_foreign"}

    response = service.webhook(event("checkout.session.completed", foreign))

    assert response.status_code == 200 and response.json()["status"] == "review"
    assert response.json()["detail"] == "session cs_not_ours was not created by this service"
    assert await balance(pool, account.user_id) == 0
    row = await pool.fetchrow("SELECT * FROM stripe_checkout_sessions WHERE session_id = $1", recorded["id"])
    package = await pool.fetchrow("SELECT id, credits FROM credit_packages WHERE name = 'Value Pack'")
    assert (row["user_id"], row["package_id"], row["credits"], row["price_cents"], row["currency"]) == (
        account.user_id,
        package["id"],
        package["credits"],
        4500,
        "usd",
    )


async def test_a_recorded_session_sold_to_another_user_credits_nothing(pool, service, fake_stripe, make_account):
    alice, bob = await make_account(), await make_account()
    session = paid(await checkout(pool, service, fake_stripe, alice))
    session = {**session, "metadata": {**session["metadata"], "user_id": str(bob.user_id)}}

    response = service.webhook(event("checkout.session.completed", session))

    assert response.json()["status"] == "review"
    assert await balance(pool, alice.user_id) == await balance(pool, bob.user_id) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount_total": 0}, "no payment"),
        ({"payment_status": "no_payment_required"}, "no payment"),
        ({"payment_status": "refunded?"}, "payment_status"),
        ({"metadata": {"user_id": "00000000-0000-0000-0000-000000000001", "package_id": "x"}}, "package_id"),
        ({"amount_total": -4500}, "amount_total"),
        ({"amount_total": 10**30}, "amount_total"),
        ({"amount_total": "4500"}, "amount_total"),
        ({"currency": 7}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"payment_intent": ["pi_1"]}, "payment_intent"),
        ({"payment_intent": "pi 1; DROP TABLE"}, "payment_intent"),
        ({"metadata": "user_id=me"}, "metadata"),
        ({"metadata": {"user_id": 42}}, "user_id"),
    ],
)
async def test_a_checkout_that_can_never_apply_is_rejected_with_its_reason(
    pool, service, fake_stripe, make_account, change, reason
):
    account = await make_account()
    session = {**paid(await checkout(pool, service, fake_stripe, account)), **change}
    completed = event("checkout.session.completed", session)

    response = service.webhook(completed)

    assert response.status_code == 200 and response.json()["status"] == "rejected", response.text
    assert reason in response.json()["detail"]
    assert await balance(pool, account.user_id) == 0
    stored = await pool.fetchrow("SELECT status, last_error FROM stripe_events WHERE id = $1", completed["id"])
    assert stored["status"] == "rejected" and reason in stored["last_error"]


async def test_an_unknown_package_is_rejected(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = paid(await checkout(pool, service, fake_stripe, account))
    session["metadata"] = {**session["metadata"], "package_id": "11111111-1111-1111-1111-111111111111"}

    response = service.webhook(event("checkout.session.completed", session))

    assert response.json()["status"] == "rejected" and "unknown credit package" in response.json()["detail"]


async def test_a_refund_of_a_rejected_checkout_does_not_wait_forever(pool, service, fake_stripe, make_account):
    account = await make_account()
    session = {**paid(await checkout(pool, service, fake_stripe, account)), "amount_total": 0}
    service.webhook(event("checkout.session.completed", session))

    response = service.webhook(event("charge.refunded", charge("pi_1", 4500, 4500)))

    assert response.status_code == 200 and response.json()["status"] == "ignored"


async def test_refunds_and_disputes_of_a_purchase_under_review_take_nothing(pool, service, fake_stripe, make_account):
    account = await make_account(credits_="20")
    session = {**paid(await checkout(pool, service, fake_stripe, account)), "amount_total": 4000}
    service.webhook(event("checkout.session.completed", session))

    refund = service.webhook(event("charge.refunded", charge("pi_1", 4000, 1000)))
    opened = service.webhook(event("charge.dispute.created", dispute("dp_1", "pi_1", 3000, "needs_response")))
    closed = service.webhook(event("charge.dispute.closed", dispute("dp_1", "pi_1", 3000, "lost")))

    assert [r.json()["status"] for r in (refund, opened, closed)] == ["processed"] * 3
    assert await balance(pool, account.user_id) == 20
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    payment = await pool.fetchrow("SELECT status, refunded_cents FROM stripe_payments WHERE payment_intent_id = 'pi_1'")
    assert (payment["status"], payment["refunded_cents"]) == ("review", 1000)
    await assert_reconciled(pool)


async def test_a_refund_in_another_currency_is_kept_for_review(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))

    response = service.webhook(event("charge.refunded", {**charge("pi_1", 4500, 4500), "currency": "eur"}))

    assert response.status_code == 200 and response.json()["status"] == "review"
    assert await balance(pool, account.user_id) == 500


async def test_a_dispute_in_another_currency_is_kept_for_review(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))

    response = service.webhook(
        event("charge.dispute.created", {**dispute("dp_1", "pi_1", 4500, "needs_response"), "currency": "gbp"})
    )

    assert response.json()["status"] == "review"
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"amount_refunded": 9000},
        {"amount_refunded": -5},
        {"amount_refunded": 1.5},
        {"amount_refunded": None},
        {"amount_refunded": 10**40},
        {"id": {"no": "id"}},
        {"payment_intent": 12},
    ],
)
async def test_a_malformed_refund_is_rejected_and_takes_nothing(pool, service, fake_stripe, make_account, change):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))

    response = service.webhook(event("charge.refunded", {**charge("pi_1", 4500, 4500), **change}))

    assert response.status_code == 200 and response.json()["status"] == "rejected", response.text
    assert await balance(pool, account.user_id) == 500


async def test_a_dispute_closed_before_it_was_opened_here(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(
        event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account, "Starter Pack")))
    )

    closed = service.webhook(event("charge.dispute.closed", dispute("dp_1", "pi_1", 1000, "lost")))
    opened = service.webhook(event("charge.dispute.created", dispute("dp_1", "pi_1", 1000, "needs_response")))

    assert closed.json()["status"] == "processed" and opened.json()["status"] == "stale"
    assert await balance(pool, account.user_id) == 0
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    assert await pool.fetchval("SELECT status FROM stripe_disputes WHERE dispute_id = 'dp_1'") == "lost"
    await assert_reconciled(pool)


async def test_a_redelivery_days_later_is_a_duplicate(pool, service, fake_stripe, make_account):
    account = await make_account()
    completed = event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account)))
    completed["created"] = int(time.time()) - 3 * 86400
    service.webhook(completed)

    again = service.webhook(completed)  # signed now, as Stripe signs each delivery

    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert await balance(pool, account.user_id) == 500


# -- never a 500 --------------------------------------------------------------------------------

WRONG_SHAPES: list[Any] = ["a string", ["a", "list"], 10**30, -1, None, True, {"id": None}, 1.5]


async def customer_of(pool, account) -> str:
    return await pool.fetchval("SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", account.user_id)


@pytest.mark.parametrize("event_type", sorted(HANDLERS))
async def test_no_field_of_any_wrong_shape_makes_a_500(pool, service, fake_stripe, make_account, event_type):
    account = await make_account(credits_="10")
    session = paid(await checkout(pool, service, fake_stripe, account))
    period_1, _ = recent_periods()
    objects = {
        "checkout.session": session,
        "charge.refunded": charge("pi_1", 4500, 100),
        "charge.dispute": dispute("dp_1", "pi_1", 100, "lost"),
        "invoice.paid": invoice(account, "sub_1", "starter", period_1),
        "customer.subscription": subscription(account, "sub_1", "starter"),
        "customer.deleted": {
            "id": await pool.fetchval(
                "SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", account.user_id
            ),
            "object": "customer",
            "deleted": True,
        },
        # auto top-up's: a charge of top-up 1 (none exists: rejected), and a card saved
        "payment_intent": {
            "id": "pi_top_up_1",
            "object": "payment_intent",
            "amount": 1000,
            "amount_received": 1000,
            "customer": "cus_x",
            "status": "succeeded",
            "latest_charge": "ch_top_up_1",
            "metadata": {"kind": "auto_top_up", "auto_top_up_id": "1", "user_id": str(account.user_id)},
            "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
        },
        "setup_intent": {
            "id": "seti_1",
            "object": "setup_intent",
            "customer": await pool.fetchval(
                "SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", account.user_id
            ),
            "payment_method": "pm_card_visa",
            "status": "succeeded",
            "metadata": {"kind": "auto_top_up", "user_id": str(account.user_id)},
        },
    }
    base = next(obj for prefix, obj in objects.items() if event_type.startswith(prefix))
    base = {**base, "currency": "usd", "metadata": base.get("metadata") or {}, "items": {"data": []}}
    codes = set()
    for key in list(base):
        for wrong in WRONG_SHAPES:
            response = service.webhook(event(event_type, {**base, key: wrong}))
            codes.add(response.status_code)
            assert response.status_code in (200, 409), (key, wrong, response.text)
    for wrong in WRONG_SHAPES:
        bad_event = {**event(event_type, base), "created": wrong, "livemode": wrong}
        assert service.webhook(bad_event).status_code in (200, 409)
    assert 200 in codes
    await assert_reconciled(pool)


@pytest.mark.parametrize("character", ["\\u0000", "\\ud800"], ids=["NUL", "lone surrogate"])
async def test_text_jsonb_cannot_hold_is_stored_not_a_500(pool, service, make_account, character):
    """jsonb has no NUL character and no lone surrogate: the signed event is stored with a
    replacement in its place and rejected (2xx: Stripe stops retrying), never refused or a 500."""
    account = await make_account()
    body = (
        '{"id": "evt_nul", "type": "customer.subscription.updated", "created": 1790000000, "data": {"object": '
        '{"id": "sub_' + character + '", "status": "active", "metadata": {"user_id": "' + str(account.user_id) + '",'
        ' "tier": "enterprise' + character + '"}}}}'
    )

    response = service.webhook(body)

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert (await user_state(pool, account.user_id))["tier"] == "trial"
    assert await pool.fetchval("SELECT status FROM stripe_events WHERE id = 'evt_nul'") == "rejected"


async def test_non_finite_numbers_are_never_a_500(pool, service, make_account):
    """NaN and Infinity are not JSON: refused as a bad body, or stored (as text) and rejected."""
    account = await make_account()
    body = (
        '{"id": "evt_nan", "type": "charge.refunded", "created": NaN, "data": {"object": '
        '{"id": "ch_1", "payment_intent": "pi_1", "amount": Infinity, "amount_refunded": NaN}}}'
    )

    response = service.webhook(body)

    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["status"] == "rejected"
    assert await balance(pool, account.user_id) == 0


async def test_rejections_are_counted_in_the_metric(pool, service, make_account):
    account = await make_account()
    service.webhook(event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_9", "amount": 1000}))
    service.webhook(event("customer.subscription.updated", subscription(account, "sub_1", "nonesuch")))

    text = httpx.get(f"{service.url}/metrics").text

    assert metric(text, "ledger_webhook_events_total", type="charge.refunded", result="rejected") == 1
    assert metric(text, "ledger_webhook_events_total", type="customer.subscription.updated", result="rejected") == 1


async def test_a_refund_after_spending_still_reconciles(pool, service, fake_stripe, make_account):
    account = await make_account()
    service.webhook(event("checkout.session.completed", paid(await checkout(pool, service, fake_stripe, account))))
    await debit_user_credits(pool, account.user_id, Decimal("499.5"), "usage", "req_x")

    service.webhook(event("charge.refunded", charge("pi_1", 4500, 4500)))

    assert await balance(pool, account.user_id) == 0
    await assert_reconciled(pool)

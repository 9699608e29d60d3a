"""POST /v1/subscriptions/change: a paid subscription moves to another tier in Stripe (through the real
stripe SDK, against tests/fake_stripe.py); the ledger's tier follows only Stripe's signed webhook."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.money.credits import debit_user_credits
from tests.fake_stripe import event

SUCCESS = {"success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel"}
CHANGE = "/v1/subscriptions/change"


@pytest.fixture
def service(upstreams, start_service, fake_stripe):
    return start_service(upstreams, stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)


async def tier_row(pool, tier: str):
    return await pool.fetchrow("SELECT price_usd, monthly_allowance FROM subscription_tiers WHERE tier = $1", tier)


async def account_state(pool, user_id):
    return await pool.fetchrow(
        "SELECT tier, monthly_allowance, credits_used_this_month, billing_cycle_start, balance"
        " FROM user_credits WHERE user_id = $1",
        user_id,
    )


async def ledger_rows(pool) -> tuple:
    """Everything a change could write: accounts, subscriptions, transactions, events."""
    return (
        await pool.fetch("SELECT * FROM user_credits ORDER BY user_id"),
        await pool.fetch("SELECT * FROM stripe_subscriptions ORDER BY subscription_id"),
        await pool.fetchval("SELECT count(*) FROM credit_transactions"),
        await pool.fetchval("SELECT count(*) FROM stripe_events"),
    )


def deliver(service, event_type: str, subscription: dict, seconds_ago: int = 0) -> None:
    """Events of one subscription created in the same second are ordered by their (random) ids: a
    subscription's creation is sent as a minute old so that a change's event is the newer one."""
    sent = event(event_type, subscription)
    sent["created"] -= seconds_ago
    response = service.webhook(sent)
    assert response.status_code == 200 and response.json()["status"] == "processed", response.text


def subscribe_through_checkout(service, fake_stripe, account, tier: str) -> dict:
    """What a user does: Checkout, pays; Stripe creates the subscription and says so by webhook."""
    response = service.post("/v1/subscriptions/checkout", account.key, {"tier": tier, **SUCCESS})
    assert response.status_code == 201, response.text
    subscription = fake_stripe.complete_subscription_checkout(response.json()["id"])
    deliver(service, "customer.subscription.created", subscription, seconds_ago=60)
    return subscription


async def seed_subscription(service, fake_stripe, pool, account, tier: str, status: str = "active") -> dict:
    """A subscription Stripe holds and the ledger knows of (by its webhook), without a checkout."""
    cents = int((await tier_row(pool, tier))["price_usd"] * 100)
    subscription = fake_stripe.subscribe(
        None, fake_stripe.price(cents), {"user_id": str(account.user_id), "tier": tier}, status
    )
    deliver(service, "customer.subscription.created", subscription, seconds_ago=60)
    return subscription


def updates(fake_stripe) -> list[tuple[str, dict]]:
    return [(path, params) for path, params in fake_stripe.requests if path.startswith("/v1/subscriptions/sub_")]


async def test_a_change_moves_the_item_to_the_new_price_and_the_tier_follows_the_webhook(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    subscription = subscribe_through_checkout(service, fake_stripe, account, "starter")
    (item,) = subscription["items"]["data"]
    product = item["price"]["product"]
    assert (await account_state(pool, account.user_id))["tier"] == "starter"
    professional = await tier_row(pool, "professional")

    response = service.post(CHANGE, account.key, {"tier": "professional"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": subscription["id"],
        "tier": "professional",
        "previous_tier": "starter",
        "status": "pending_webhook",
    }
    ((path, params),) = updates(fake_stripe)
    assert path == f"/v1/subscriptions/{subscription['id']}"
    assert params == {
        "items": [
            {
                "id": item["id"],
                "price_data": {
                    "currency": "usd",
                    "product": product,
                    "unit_amount": str(int(professional["price_usd"] * 100)),
                    "recurring": {"interval": "month"},
                },
            }
        ],
        "metadata": {"tier": "professional"},
        "proration_behavior": "create_prorations",
    }
    assert ("GET", path) in fake_stripe.calls
    changed = fake_stripe.subscriptions[subscription["id"]]
    assert changed["metadata"] == {"user_id": str(account.user_id), "tier": "professional", "kind": "subscription"}
    assert changed["items"]["data"][0]["price"]["unit_amount"] == 4900
    assert (await account_state(pool, account.user_id))["tier"] == "starter", "the answer changes nothing"
    assert service.get("/v1/credits/balance", account.key).json()["tier"] == "starter"

    deliver(service, "customer.subscription.updated", changed)

    after = await account_state(pool, account.user_id)
    assert (after["tier"], after["monthly_allowance"]) == ("professional", professional["monthly_allowance"])
    balance = service.get("/v1/credits/balance", account.key).json()
    assert balance["subscription"]["tier"] == "professional" and balance["subscription"]["id"] == subscription["id"]


async def test_the_operators_stripe_price_is_used_when_set(pool, service, fake_stripe, make_account):
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    enterprise_price = fake_stripe.price(19900)
    await pool.execute(
        "UPDATE subscription_tiers SET stripe_price_id = $1 WHERE tier = 'enterprise'", enterprise_price["id"]
    )
    item_id = subscription["items"]["data"][0]["id"]

    response = service.post(CHANGE, account.key, {"tier": "enterprise"})

    assert response.status_code == 200, response.text
    ((_, params),) = updates(fake_stripe)
    assert params["items"] == [{"id": item_id, "price": enterprise_price["id"]}]
    # the webhook finds the tier by the operator's price, whatever the metadata says
    changed = fake_stripe.subscriptions[subscription["id"]]
    changed["metadata"]["tier"] = "starter"
    deliver(service, "customer.subscription.updated", changed)
    assert (await account_state(pool, account.user_id))["tier"] == "enterprise"


async def test_an_upgrade_mid_cycle_keeps_the_cycle_and_its_usage(pool, service, fake_stripe, make_account):
    """The webhook sets the new tier's allowance at once; what was used this cycle and the cycle's
    start stay, so the upgrade adds (new allowance - old allowance) to what is left this cycle."""
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    await debit_user_credits(pool, account.user_id, 300, "usage", "req_before_upgrade")
    before = await account_state(pool, account.user_id)
    professional = await tier_row(pool, "professional")

    service.post(CHANGE, account.key, {"tier": "professional"})
    deliver(service, "customer.subscription.updated", fake_stripe.subscriptions[subscription["id"]])

    after = await account_state(pool, account.user_id)
    assert after["monthly_allowance"] == professional["monthly_allowance"]
    assert after["credits_used_this_month"] == before["credits_used_this_month"] == 300
    assert after["billing_cycle_start"] == before["billing_cycle_start"]
    assert after["balance"] == before["balance"]
    shown = service.get("/v1/credits/balance", account.key).json()
    assert Decimal(shown["allowance_remaining"]) == professional["monthly_allowance"] - 300


async def test_a_downgrade_below_what_was_used_leaves_no_allowance_this_cycle(pool, service, fake_stripe, make_account):
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "professional")
    await debit_user_credits(pool, account.user_id, 5000, "usage", "req_before_downgrade")
    starter = await tier_row(pool, "starter")

    response = service.post(CHANGE, account.key, {"tier": "starter"})
    deliver(service, "customer.subscription.updated", fake_stripe.subscriptions[subscription["id"]])

    assert response.status_code == 200
    after = await account_state(pool, account.user_id)
    assert (after["tier"], after["monthly_allowance"], after["credits_used_this_month"]) == (
        "starter",
        starter["monthly_allowance"],
        5000,
    )
    assert after["balance"] == 0, "used allowance above the new one is not charged to the balance"
    assert Decimal(service.get("/v1/credits/balance", account.key).json()["allowance_remaining"]) == 0


async def test_asking_twice_before_the_webhook_sends_one_change(pool, service, fake_stripe, make_account):
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")

    first = service.post(CHANGE, account.key, {"tier": "enterprise"})
    again = service.post(CHANGE, account.key, {"tier": "enterprise"})
    other = service.post(CHANGE, account.key, {"tier": "professional"})

    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json() == again.json()
    sent = [params["metadata"]["tier"] for _, params in updates(fake_stripe)]
    assert sent == ["enterprise", "professional"], "the same change again is not prorated twice"
    deliver(service, "customer.subscription.updated", fake_stripe.subscriptions[subscription["id"]])
    assert (await account_state(pool, account.user_id))["tier"] == "professional"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


async def test_any_other_tier_is_a_400_that_sends_nothing(pool, service, fake_stripe, make_account):
    account = await make_account()
    await seed_subscription(service, fake_stripe, pool, account, "starter")
    before, sent = await ledger_rows(pool), list(fake_stripe.calls)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(tier=JSON.filter(lambda t: t not in ("starter", "professional", "enterprise")))
    def refused(tier):
        response = service.post(CHANGE, account.key, {"tier": tier})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"

    refused()

    assert fake_stripe.calls == sent
    assert await ledger_rows(pool) == before


@pytest.mark.parametrize(
    ("setup", "body", "status", "code"),
    [
        (None, {"tier": "professional"}, 409, "no_subscription"),
        ("canceled", {"tier": "professional"}, 409, "no_subscription"),
        ("unpaid", {"tier": "professional"}, 409, "no_subscription"),
        ("active", {"tier": "starter"}, 409, "same_tier"),
        ("active", {"tier": "trial"}, 400, None),
        ("active", {"tier": "gold"}, 400, None),
        ("active", {"tier": None}, 400, None),
        ("active", {}, 400, None),
    ],
)
async def test_refusals_write_nothing_and_send_nothing_to_stripe(
    pool, service, fake_stripe, make_account, setup, body, status, code
):
    account = await make_account()
    if setup is not None:
        await seed_subscription(service, fake_stripe, pool, account, "starter", setup)
    before, sent = await ledger_rows(pool), list(fake_stripe.calls)
    stripe_before = repr(fake_stripe.subscriptions)

    response = service.post(CHANGE, account.key, body)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code
    if code == "no_subscription":
        assert "/v1/subscriptions/checkout" in error["message"]
    assert fake_stripe.calls == sent and repr(fake_stripe.subscriptions) == stripe_before
    assert await ledger_rows(pool) == before


async def test_a_tier_not_on_sale_is_a_400(pool, service, fake_stripe, make_account):
    account = await make_account()
    await seed_subscription(service, fake_stripe, pool, account, "starter")
    await pool.execute("UPDATE subscription_tiers SET is_active = false WHERE tier = 'enterprise'")
    sent = list(fake_stripe.calls)

    response = service.post(CHANGE, account.key, {"tier": "enterprise"})

    assert response.status_code == 400 and "not on sale" in response.json()["error"]["message"]
    assert fake_stripe.calls == sent


async def test_a_change_is_503_when_stripe_is_not_configured(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()

    response = service.post(CHANGE, account.key, {"tier": "professional"})

    assert response.status_code == 503 and response.json()["error"]["code"] == "stripe_not_configured"


async def test_a_change_needs_a_gateway_key(service, fake_stripe):
    response = service.post(CHANGE, "sk-not-a-key", {"tier": "professional"})

    assert response.status_code == 401 and fake_stripe.calls == []


async def test_a_subscription_stripe_has_ended_is_not_changed(pool, service, fake_stripe, make_account):
    """Stripe ended it and its webhook is not here yet: the ledger still says active, Stripe decides."""
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    fake_stripe.subscriptions[subscription["id"]]["status"] = "canceled"

    response = service.post(CHANGE, account.key, {"tier": "professional"})

    assert response.status_code == 409 and response.json()["error"]["code"] == "no_subscription"
    assert updates(fake_stripe) == []


async def test_only_the_callers_subscription_is_changed(pool, service, fake_stripe, make_account):
    alice, bob, carol = await make_account(), await make_account(), await make_account()
    alices = await seed_subscription(service, fake_stripe, pool, alice, "starter")
    bobs = await seed_subscription(service, fake_stripe, pool, bob, "starter")
    bobs_before = repr(fake_stripe.subscriptions[bobs["id"]])

    carols_answer = service.post(CHANGE, carol.key, {"tier": "enterprise"})
    alices_answer = service.post(CHANGE, alice.key, {"tier": "professional"})

    assert carols_answer.status_code == 409, "someone without a subscription never reaches another's"
    assert alices_answer.status_code == 200 and alices_answer.json()["id"] == alices["id"]
    assert [path for path, _ in updates(fake_stripe)] == [f"/v1/subscriptions/{alices['id']}"]
    assert {path for _, path in fake_stripe.calls if "/subscriptions/" in path} == {f"/v1/subscriptions/{alices['id']}"}
    assert repr(fake_stripe.subscriptions[bobs["id"]]) == bobs_before
    deliver(service, "customer.subscription.updated", fake_stripe.subscriptions[alices["id"]])
    assert (await account_state(pool, bob.user_id))["tier"] == "starter"
    assert (await account_state(pool, carol.user_id))["tier"] == "trial"
    assert (await account_state(pool, alice.user_id))["tier"] == "professional"


async def test_stripe_refusing_the_change_is_a_502_that_does_not_relay_stripes_words(
    pool, service, fake_stripe, make_account, caplog
):
    account = await make_account()
    await seed_subscription(service, fake_stripe, pool, account, "starter")
    before = await ledger_rows(pool)
    fake_stripe.secret_key = "sk_test_rotated"  # the service's key is refused from now on
    fake_stripe.refusal = "Invalid API Key provided: sk_live_****************wxyz"

    response = service.post(CHANGE, account.key, {"tier": "professional"})

    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": "The payment provider could not change the subscription. Try again later.",
        "type": "upstream_error",
        "param": None,
        "code": "stripe_error",
    }
    assert "[redacted]" in caplog.text and "wxyz" not in caplog.text
    assert await ledger_rows(pool) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "sub_someone_else"},
        {"id": None},
        {"items": None},
        {"items": {"object": "list", "data": []}},
        {"items": {"object": "list", "data": [{"id": "si_1"}, {"id": "si_2"}]}},
        {"items": {"object": "list", "data": [{"id": "si_1", "price": {"id": "price_1", "product": None}}]}},
        {"items": {"object": "list", "data": [{"id": "x", "price": {"id": "price_1", "product": "prod_1"}}]}},
    ],
)
async def test_a_malformed_stripe_answer_is_a_502_and_changes_nothing(
    pool, service, fake_stripe, make_account, changes
):
    account = await make_account()
    await seed_subscription(service, fake_stripe, pool, account, "starter")
    before = await ledger_rows(pool)
    fake_stripe.subscription_changes = changes

    response = service.post(CHANGE, account.key, {"tier": "professional"})

    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "stripe_error"
    assert updates(fake_stripe) == [], "nothing is sent after an answer that is not Stripe's"
    assert await ledger_rows(pool) == before


def line(period_start: int, period_end: int, price: dict, *, proration: bool, amount: int) -> dict:
    """An invoice line as Stripe sends it (API 2025-03-31 and later: the price under pricing)."""
    return {
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "metadata": {},
        "period": {"start": period_start, "end": period_end},
        "pricing": {"type": "price_details", "price_details": {"price": price["id"], "product": price["product"]}},
        "parent": {"type": "subscription_item_details", "subscription_item_details": {"proration": proration}},
    }


def renewal_invoice(subscription: dict, invoice_id: str, lines: list[dict]) -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": subscription["customer"],
        "billing_reason": "subscription_cycle",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription["id"], "metadata": dict(subscription["metadata"])},
        },
        "lines": {"object": "list", "data": lines},
    }


async def test_the_renewal_after_a_prorated_change_starts_the_cycle_at_the_period_paid_for(
    pool, service, fake_stripe, make_account
):
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    starter_price = subscription["items"]["data"][0]["price"]
    now = int(time.time())
    first, changed_at, renewal = now + 60, now + 120, now + 180  # within the day ahead that invoices may claim
    first_invoice = renewal_invoice(
        subscription, "in_first", [line(first, renewal, starter_price, proration=False, amount=1900)]
    )
    assert service.webhook(event("invoice.paid", first_invoice)).json()["status"] == "processed"
    service.post(CHANGE, account.key, {"tier": "professional"})
    changed = fake_stripe.subscriptions[subscription["id"]]
    deliver(service, "customer.subscription.updated", changed)
    professional_price = changed["items"]["data"][0]["price"]
    # Stripe lists the pending prorations first, then the new period's line
    lines = [
        line(changed_at, renewal, starter_price, proration=True, amount=-950),
        line(changed_at, renewal, professional_price, proration=True, amount=2450),
        line(renewal, renewal + 2_592_000, professional_price, proration=False, amount=4900),
    ]

    response = service.webhook(event("invoice.paid", renewal_invoice(changed, "in_renewal", lines)))

    assert response.status_code == 200, response.text
    cycle_start = (await account_state(pool, account.user_id))["billing_cycle_start"]
    assert cycle_start.timestamp() == renewal, f"the cycle starts at {cycle_start.timestamp() - renewal:+.0f} s"
    assert (await account_state(pool, account.user_id))["tier"] == "professional"


async def test_an_invoice_of_prorations_only_moves_no_cycle(pool, service, fake_stripe, make_account):
    account = await make_account()
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    price = subscription["items"]["data"][0]["price"]
    now = int(time.time())
    first = renewal_invoice(subscription, "in_first", [line(now, now + 2_592_000, price, proration=False, amount=1900)])
    assert service.webhook(event("invoice.paid", first)).json()["status"] == "processed"
    before = await account_state(pool, account.user_id)
    prorations = renewal_invoice(
        subscription, "in_prorations", [line(now + 60, now + 2_592_000, price, proration=True, amount=2450)]
    )

    response = service.webhook(event("invoice.paid", prorations))

    assert response.json()["status"] == "ignored"
    assert await account_state(pool, account.user_id) == before


async def test_a_subscriber_cannot_start_a_second_subscription_but_one_whose_ended_can(
    pool, service, fake_stripe, make_account
):
    # every status Stripe may still bill: unpaid, incomplete and paused ones can be paid again
    live = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
    paid = {status: await make_account() for status in live}
    for status, account in paid.items():
        await seed_subscription(service, fake_stripe, pool, account, "starter", status)
    ended = await make_account()
    await seed_subscription(service, fake_stripe, pool, ended, "starter", "canceled")
    expired = await make_account()
    await seed_subscription(service, fake_stripe, pool, expired, "starter", "incomplete_expired")
    calls, before = list(fake_stripe.calls), await ledger_rows(pool)

    refused = {
        status: service.post("/v1/subscriptions/checkout", account.key, {"tier": "professional", **SUCCESS})
        for status, account in paid.items()
    }

    for status, response in refused.items():
        assert response.status_code == 409, (status, response.text)
        error = response.json()["error"]
        assert error["code"] == "already_subscribed", status
        assert "POST /v1/subscriptions/change" in error["message"] and f"({status})" in error["message"]
    assert fake_stripe.calls == calls, "nothing reached Stripe"
    assert fake_stripe.sessions == {}
    assert await ledger_rows(pool) == before, "nothing was written"
    for account in (ended, expired):
        again = service.post("/v1/subscriptions/checkout", account.key, {"tier": "professional", **SUCCESS})
        assert again.status_code == 201, again.text
        assert fake_stripe.sessions[again.json()["id"]]["mode"] == "subscription"

"""Top-up purchases: packages and Stripe Checkout sessions, through the real stripe SDK."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe

from tests.fake_stripe import event

SUCCESS = {"success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel"}


@pytest.fixture
def stripe_service(upstreams, start_service, fake_stripe):
    return start_service(upstreams, stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)


async def package_id(pool, name: str) -> str:
    return str(await pool.fetchval("SELECT id FROM credit_packages WHERE name = $1", name))


async def test_packages_list_credits_prices_and_discounts(stripe_service, make_account):
    account = await make_account()

    body = stripe_service.get("/v1/credits/packages", account.key).json()

    assert [(p["name"], p["credits"], p["price_usd"], p["discount_percentage"]) for p in body["data"]] == [
        ("Starter Pack", "100.000000", "10.00", "0.00"),
        ("Value Pack", "500.000000", "45.00", "10.00"),
        ("Pro Pack", "1000.000000", "80.00", "20.00"),
        ("Enterprise Pack", "5000.000000", "350.00", "30.00"),
    ]


async def test_a_credit_checkout_is_a_payment_session_carrying_the_user_and_package(
    pool, stripe_service, make_account, fake_stripe
):
    account = await make_account()
    value_pack = await package_id(pool, "Value Pack")

    response = stripe_service.post("/v1/credits/checkout", account.key, {"package_id": value_pack, **SUCCESS})

    assert response.status_code == 201
    session = fake_stripe.sessions[response.json()["id"]]
    assert response.json()["url"] == session["url"]
    assert session["mode"] == "payment" and session["amount_total"] == 4500
    assert session["metadata"] == {
        "user_id": str(account.user_id),
        "package_id": value_pack,
        "credits": "500.000000",
        "price_cents": "4500",
        "currency": "usd",
        "kind": "credits",
    }
    customer = await customer_of(pool, account)
    assert session["customer"] == customer and fake_stripe.customers[customer]["metadata"]["user_id"] == str(
        account.user_id
    )


async def test_the_stripe_customer_is_created_once(pool, stripe_service, make_account, fake_stripe):
    account = await make_account()
    starter = await package_id(pool, "Starter Pack")

    async def checkout() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(
                f"{stripe_service.url}/v1/credits/checkout",
                json={"package_id": starter, **SUCCESS},
                headers={"Authorization": f"Bearer {account.key}"},
            )

    responses = await asyncio.gather(*(checkout() for _ in range(4)))

    assert all(r.status_code == 201 for r in responses)
    assert len(fake_stripe.customers) == 1
    assert len({fake_stripe.sessions[r.json()["id"]]["customer"] for r in responses}) == 1


async def test_a_subscription_checkout_is_a_monthly_subscription_session(stripe_service, make_account, fake_stripe):
    account = await make_account()

    response = stripe_service.post("/v1/subscriptions/checkout", account.key, {"tier": "professional", **SUCCESS})

    session = fake_stripe.sessions[response.json()["id"]]
    assert session["mode"] == "subscription" and session["amount_total"] == 4900
    (_, params), *_ = [r for r in fake_stripe.requests if r[0] == "/v1/checkout/sessions"]
    assert params["line_items"][0]["price_data"]["recurring"] == {"interval": "month"}
    assert params["subscription_data"]["metadata"]["tier"] == "professional"


async def test_bad_checkouts_are_400s(pool, stripe_service, make_account, fake_stripe):
    account = await make_account()

    unknown = stripe_service.post("/v1/credits/checkout", account.key, {"package_id": "not-a-uuid", **SUCCESS})
    missing = stripe_service.post(
        "/v1/credits/checkout", account.key, {"package_id": await package_id(pool, "Pro Pack")}
    )
    trial = stripe_service.post("/v1/subscriptions/checkout", account.key, {"tier": "trial", **SUCCESS})

    assert unknown.status_code == 400 and missing.status_code == 400 and trial.status_code == 400
    assert missing.json()["error"]["param"] == "success_url"
    assert fake_stripe.sessions == {}


async def test_purchases_are_503_when_stripe_is_not_configured(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()

    response = service.post(
        "/v1/credits/checkout", account.key, {"package_id": await package_id(pool, "Starter Pack"), **SUCCESS}
    )

    assert response.status_code == 503 and response.json()["error"]["code"] == "stripe_not_configured"
    assert "LEDGER_STRIPE_SECRET_KEY" in response.json()["error"]["message"]


async def test_checkout_needs_a_gateway_key(stripe_service):
    response = httpx.post(f"{stripe_service.url}/v1/credits/checkout", json={})

    assert response.status_code == 401


async def test_stripe_refusing_the_checkout_is_a_502_that_does_not_relay_stripes_words(
    pool, upstreams, start_service, make_account, fake_stripe, caplog
):
    """Stripe's real message for a revoked key names the key's suffix: the user gets a generic 502,
    the log gets Stripe's message with the key redacted."""
    fake_stripe.refusal = "Invalid API Key provided: sk_live_****************wxyz"
    service = start_service(upstreams, stripe_secret_key="sk_test_revoked", stripe_api_base=fake_stripe.api_base)
    account = await make_account()

    response = service.post(
        "/v1/credits/checkout", account.key, {"package_id": await package_id(pool, "Starter Pack"), **SUCCESS}
    )

    assert response.status_code == 502 and response.json()["error"]["code"] == "stripe_error"
    assert response.json()["error"]["message"] == "The payment provider could not start the checkout. Try again later."
    assert "Invalid API Key provided: [redacted]" in caplog.text and "wxyz" not in caplog.text
    assert fake_stripe.sessions == {} and fake_stripe.customers == {}
    assert await customer_of(pool, account) is None


@pytest.mark.parametrize(
    ("customer_changes", "session_changes"),
    [
        ({"id": None}, {}),  # a customer without an id
        ({"id": "cus_" + "x" * 300}, {}),
        ({"id": 5}, {}),
        ({}, {"id": None, "url": 5}),
        ({}, {"url": None}),
        ({}, {"url": "javascript:alert(1)"}),
        ({}, {"url": "https://checkout.stripe.test/" + "x" * 3000}),
        ({}, {"id": "pi_123"}),  # not a session's id
    ],
)
async def test_a_malformed_stripe_answer_is_a_502_and_relays_nothing(
    pool, stripe_service, make_account, fake_stripe, customer_changes, session_changes
):
    fake_stripe.customer_changes, fake_stripe.session_changes = customer_changes, session_changes
    account = await make_account()

    response = stripe_service.post(
        "/v1/credits/checkout", account.key, {"package_id": await package_id(pool, "Starter Pack"), **SUCCESS}
    )

    assert response.status_code == 502, response.text
    assert response.json()["error"] == {
        "message": "The payment provider could not start the checkout. Try again later.",
        "type": "upstream_error",
        "param": None,
        "code": "stripe_error",
    }
    assert await pool.fetchval("SELECT count(*) FROM stripe_checkout_sessions") == 0


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://app.example/ok",
        "data:text/html,hi",
        "https://",
        "/relative",
        "https://a b.example",
    ],
)
@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_return_urls_must_be_web_urls(pool, stripe_service, make_account, fake_stripe, url, field):
    account = await make_account()

    credit = stripe_service.post(
        "/v1/credits/checkout",
        account.key,
        {"package_id": await package_id(pool, "Starter Pack"), **SUCCESS, field: url},
    )
    tier = stripe_service.post("/v1/subscriptions/checkout", account.key, {"tier": "starter", **SUCCESS, field: url})

    assert credit.status_code == tier.status_code == 400, credit.text
    assert credit.json()["error"]["param"] == field
    assert fake_stripe.sessions == {}


async def test_a_stripe_answer_reusing_another_users_customer_or_session_is_a_502(
    pool, stripe_service, make_account, fake_stripe
):
    """A customer id or session id already another user's is never shared (stripe_customer_id and
    the recorded session are unique): a 502, not a 500 from the unique constraint."""
    alice, bob, carol = await make_account(), await make_account(), await make_account()
    body = {"package_id": await package_id(pool, "Starter Pack"), **SUCCESS}
    first = stripe_service.post("/v1/credits/checkout", alice.key, body)
    alices = await pool.fetchval("SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", alice.user_id)

    fake_stripe.customer_changes = {"id": alices}
    same_customer = stripe_service.post("/v1/credits/checkout", bob.key, body)
    fake_stripe.customer_changes, fake_stripe.session_changes = {}, {"id": first.json()["id"]}
    same_session = stripe_service.post("/v1/credits/checkout", carol.key, body)

    assert first.status_code == 201
    assert same_customer.status_code == same_session.status_code == 502, same_customer.text
    assert await pool.fetchval("SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", bob.user_id) is None
    recorded = await pool.fetch("SELECT user_id FROM stripe_checkout_sessions")
    assert [r["user_id"] for r in recorded] == [alice.user_id]


async def checkout_of(service, account, pool) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{service.url}/v1/credits/checkout",
            json={"package_id": await package_id(pool, "Starter Pack"), **SUCCESS},
            headers={"Authorization": f"Bearer {account.key}"},
        )


async def customer_of(pool, account) -> str | None:
    return await pool.fetchval("SELECT stripe_customer_id FROM user_credits WHERE user_id = $1", account.user_id)


def delete_in_stripe(fake_stripe, customer_id: str) -> None:
    """The operator deletes the customer in Stripe's dashboard (the real SDK, against the fake)."""
    stripe.StripeClient("sk_test_123", base_addresses={"api": fake_stripe.api_base}).v1.customers.delete(customer_id)


async def test_a_customer_deleted_in_stripe_is_forgotten_on_its_event_and_the_next_checkout_makes_a_new_one(
    pool, stripe_service, make_account, fake_stripe
):
    """After customer.deleted, every checkout of that user once failed forever (a 502: the stored
    customer id was reused)."""
    account = await make_account()
    assert (await checkout_of(stripe_service, account, pool)).status_code == 201
    first = await customer_of(pool, account)
    delete_in_stripe(fake_stripe, first)

    deleted = event("customer.deleted", {"id": first, "object": "customer", "deleted": True})
    assert stripe_service.webhook(deleted).status_code == 200
    assert stripe_service.webhook(deleted).status_code == 200  # redelivered: changes nothing more
    assert await customer_of(pool, account) is None

    again = await checkout_of(stripe_service, account, pool)

    assert again.status_code == 201, again.text
    second = await customer_of(pool, account)
    assert second not in (None, first) and second in fake_stripe.customers
    assert fake_stripe.sessions[again.json()["id"]]["customer"] == second
    assert (
        await pool.fetchval("SELECT stripe_customers_forgotten FROM user_credits WHERE user_id = $1", account.user_id)
        == 1
    )


async def test_a_customer_deleted_before_its_event_arrives_is_replaced_at_checkout(
    pool, stripe_service, make_account, fake_stripe
):
    """The event is late or lost: Stripe's resource_missing for the stored customer makes a new one."""
    account = await make_account()
    assert (await checkout_of(stripe_service, account, pool)).status_code == 201
    first = await customer_of(pool, account)
    delete_in_stripe(fake_stripe, first)

    again = await checkout_of(stripe_service, account, pool)

    assert again.status_code == 201, again.text
    second = fake_stripe.sessions[again.json()["id"]]["customer"]
    assert second != first and second in fake_stripe.customers
    # the late event then finds no account holding the deleted customer: ignored, nothing changes
    late = stripe_service.webhook(event("customer.deleted", {"id": first, "object": "customer", "deleted": True}))
    assert late.status_code == 200
    assert await customer_of(pool, account) == second


async def test_a_customer_deleted_event_for_another_customer_changes_no_account(pool, stripe_service, make_account):
    account = await make_account()
    assert (await checkout_of(stripe_service, account, pool)).status_code == 201
    kept = await customer_of(pool, account)

    response = stripe_service.webhook(event("customer.deleted", {"id": "cus_someone_else", "object": "customer"}))

    assert response.status_code == 200
    assert await customer_of(pool, account) == kept

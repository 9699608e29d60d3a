"""A key's owner reads their own balance, transactions and usage, and nobody else's."""

from __future__ import annotations

import httpx

from ledger.money.credits import add_user_credits

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]


async def test_the_balance_shows_balance_allowance_quota_tier_and_power_level(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="10", monthly_allowance="2", power_level="eco")
    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)  # 0.42 credits at eco

    body = service.get("/v1/credits/balance", account.key).json()

    assert body["balance"] == "10.000000"
    assert body["monthly_allowance"] == "2.000000" and body["allowance_remaining"] == "1.580000"
    assert body["quota_usage_percentage"] == "21.00"
    assert (body["tier"], body["power_level"], body["user_id"]) == ("trial", "eco", str(account.user_id))


async def test_transactions_are_paginated_and_filtered(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()
    for i in range(5):
        await add_user_credits(pool, account.user_id, i + 1, "bonus", f"bonus-{i}")

    first = service.get("/v1/credits/transactions", account.key, limit=2).json()
    second = service.get("/v1/credits/transactions", account.key, limit=2, after=first["next_cursor"]).json()
    last = service.get("/v1/credits/transactions", account.key, limit=2, after=second["next_cursor"]).json()
    bonuses = service.get("/v1/credits/transactions", account.key, type="bonus").json()
    future = service.get("/v1/credits/transactions", account.key, **{"from": "2999-01-01"}).json()

    amounts = [t["amount"] for page in (first, second, last) for t in page["data"]]
    assert amounts == ["5.000000", "4.000000", "3.000000", "2.000000", "1.000000"]
    assert first["has_more"] and second["has_more"] and not last["has_more"]
    assert len(bonuses["data"]) == 5 and future["data"] == []


async def test_usage_is_filtered_by_model_and_date(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    client = service.client(account.key)
    client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    client.chat.completions.create(model="claude-3-haiku-20240307", messages=MESSAGES)

    everything = service.get("/v1/usage", account.key).json()["data"]
    gpt4 = service.get("/v1/usage", account.key, model="gpt-4").json()["data"]
    before = service.get("/v1/usage", account.key, to="2000-01-01T00:00:00Z").json()["data"]

    assert [u["model"] for u in everything] == ["claude-3-haiku-20240307", "gpt-4"]
    assert [u["model"] for u in gpt4] == ["gpt-4"] and gpt4[0]["credits_used"] == "0.600000"
    assert before == []


async def test_bad_query_parameters_are_400s(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()

    for params in ({"limit": "0"}, {"limit": "many"}, {"from": "yesterday"}, {"after": "-3"}):
        response = service.get("/v1/usage", account.key, **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["param"] in params


async def test_nobody_sees_another_users_data(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    alice, bob = await make_account(credits_="100"), await make_account(credits_="7")
    service.client(alice.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    alice_key = httpx.post(
        f"{service.url}/v1/provider-keys",
        headers={"Authorization": f"Bearer {alice.key}"},
        json={"provider": "openai", "api_key": "sk-alices-secret-key"},
    ).json()

    bob_balance = service.get("/v1/credits/balance", bob.key).json()
    bob_transactions = service.get("/v1/credits/transactions", bob.key).json()["data"]
    bob_usage = service.get("/v1/usage", bob.key).json()["data"]
    bob_keys = service.get("/v1/provider-keys", bob.key).json()["data"]
    steal = httpx.delete(
        f"{service.url}/v1/provider-keys/{alice_key['id']}", headers={"Authorization": f"Bearer {bob.key}"}
    )

    assert bob_balance["user_id"] == str(bob.user_id) and bob_balance["balance"] == "7.000000"
    assert [t["amount"] for t in bob_transactions] == ["7.000000"]
    assert bob_usage == [] and bob_keys == []
    assert steal.status_code == 404
    assert await pool.fetchval("SELECT is_active FROM user_provider_keys WHERE id = $1::uuid", alice_key["id"])


async def test_account_endpoints_need_a_key(upstreams, start_service):
    service = start_service(upstreams)

    for path in ("/v1/credits/balance", "/v1/credits/transactions", "/v1/usage", "/v1/provider-keys"):
        response = httpx.get(f"{service.url}{path}")
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"

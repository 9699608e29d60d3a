"""The owner's power level (PATCH /v1/account), and every owner endpoint's refusal of a revoked or
expired key."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import HTTP_TIMEOUT


def patch(service, key: str, body: object) -> httpx.Response:
    return httpx.patch(
        f"{service.url}/v1/account", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=HTTP_TIMEOUT
    )


async def test_the_owner_changes_their_power_level_and_sees_the_account_as_the_balance_shows_it(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    other = await make_account()
    await pool.execute(
        "INSERT INTO power_level_configs (power_level, cost_multiplier, max_latency_ms, quality_threshold,"
        " preferred_providers) VALUES ('turbo', 2, 1000, 0.9, ARRAY['openai'])"
    )

    changed = patch(service, account.key, {"power_level": "eco"})
    balance = service.get("/v1/credits/balance", account.key)
    custom = patch(service, account.key, {"power_level": "turbo"})

    assert changed.status_code == 200 and changed.json()["power_level"] == "eco"
    assert changed.json() == balance.json()
    assert custom.status_code == 200 and custom.json()["power_level"] == "turbo"
    assert await pool.fetchval("SELECT power_level FROM user_credits WHERE user_id = $1", account.user_id) == "turbo"
    assert await pool.fetchval("SELECT power_level FROM user_credits WHERE user_id = $1", other.user_id) == "balanced"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"power_level": "ludicrous"}, "power_level"),
        ({"power_level": ""}, "power_level"),
        ({"power_level": 3}, "power_level"),
        ({}, "power_level"),
        ({"power_level": "x" * 65}, "power_level"),
    ],
)
async def test_an_unknown_power_level_is_a_400_that_names_the_known_ones(
    pool, upstreams, start_service, make_account, body, param
):
    service = start_service(upstreams)
    account = await make_account(power_level="precision")
    await pool.execute("UPDATE power_level_configs SET is_active = false WHERE power_level = 'eco'")

    answer = patch(service, account.key, body)
    retired = patch(service, account.key, {"power_level": "eco"})

    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert retired.status_code == 400 and retired.json()["error"]["code"] == "unknown_power_level"
    assert "balanced" in retired.json()["error"]["message"] and "precision" in retired.json()["error"]["message"]
    assert await pool.fetchval("SELECT power_level FROM user_credits WHERE user_id = $1", account.user_id) == (
        "precision"
    )


OWNER_REQUESTS = [
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {}),
    ("DELETE", "/v1/keys/{key_id}", None),
    ("PATCH", "/v1/account", {"power_level": "eco"}),
    ("GET", "/v1/usage/daily", None),
]


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_a_revoked_or_expired_key_is_a_401_on_every_owner_endpoint(
    pool, upstreams, start_service, make_account, how
):
    service = start_service(upstreams)
    account = await make_account()
    if how == "revoked":
        await pool.execute(
            "UPDATE gateway_api_keys SET is_active = false, revoked_at = now() WHERE id = $1", account.key_id
        )
    else:
        await pool.execute(
            "UPDATE gateway_api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", account.key_id
        )

    for method, path, body in OWNER_REQUESTS:
        answer = httpx.request(
            method,
            f"{service.url}{path.format(key_id=account.key_id)}",
            headers={"Authorization": f"Bearer {account.key}"},
            json=body,
            timeout=HTTP_TIMEOUT,
        )
        assert answer.status_code == 401, (method, path)
        assert answer.json()["error"]["code"] == "invalid_api_key"
    assert await pool.fetchval("SELECT count(*) FROM gateway_api_keys WHERE user_id = $1", account.user_id) == 1
    assert await pool.fetchval("SELECT power_level FROM user_credits WHERE user_id = $1", account.user_id) == "balanced"

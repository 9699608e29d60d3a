"""The admin API: users, gateway keys and credit grants, behind LEDGER_ADMIN_TOKEN."""

from __future__ import annotations

import uuid

import openai
import pytest

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]


async def test_an_operator_creates_a_user_and_a_key_that_works(pool, upstreams, start_service):
    service = start_service(upstreams)

    user = service.admin("POST", "/admin/users", json={"email": "a@example.com", "tier": "starter"})
    key = service.admin("POST", f"/admin/users/{user.json()['user_id']}/keys", json={"name": "laptop"})
    completion = service.client(key.json()["key"]).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert user.status_code == 201
    assert (user.json()["tier"], user.json()["monthly_allowance"]) == ("starter", "1000.000000")
    assert key.status_code == 201 and key.json()["key"].startswith(key.json()["prefix"])
    assert completion.choices
    stored = await pool.fetchrow("SELECT * FROM gateway_api_keys WHERE id = $1::uuid", key.json()["id"])
    assert stored["key_hash"] != key.json()["key"] and key.json()["key"] not in str(dict(stored))


async def test_a_revoked_key_stops_working(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    revoked = service.admin("DELETE", f"/admin/keys/{account.key_id}")
    again = service.admin("DELETE", f"/admin/keys/{account.key_id}")

    assert revoked.status_code == 200 and again.status_code == 404
    with pytest.raises(openai.AuthenticationError):
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)


async def test_credit_grants_are_recorded_as_such_and_idempotent(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()
    path = f"/admin/users/{account.user_id}/credits"

    bonus = service.admin(
        "POST",
        path,
        json={
            "amount": "25.50",
            "transaction_type": "bonus",
            "reference": "promo-1",
            "description": "launch promo",
        },
    )
    replay = service.admin("POST", path, json={"amount": "25.50", "transaction_type": "bonus", "reference": "promo-1"})
    conflict = service.admin("POST", path, json={"amount": "30", "transaction_type": "bonus", "reference": "promo-1"})
    removal = service.admin(
        "POST",
        path,
        json={
            "amount": "-5",
            "transaction_type": "admin_adjustment",
            "reference": "fix-1",
            "description": "double grant",
        },
    )
    too_much = service.admin("POST", path, json={"amount": "-500", "transaction_type": "admin_adjustment"})

    assert bonus.status_code == 200 and bonus.json()["new_balance"] == "25.500000"
    assert replay.json() == bonus.json()
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert removal.json()["new_balance"] == "20.500000"
    assert too_much.status_code == 409
    rows = await pool.fetch(
        "SELECT transaction_type, amount, description FROM credit_transactions WHERE user_id = $1 ORDER BY id",
        account.user_id,
    )
    assert [tuple(r) for r in rows] == [
        ("bonus", 25.5, "launch promo"),
        ("admin_adjustment", -5, "double grant"),
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"amount": 1.5, "transaction_type": "bonus"}, 400),
        ({"amount": "abc", "transaction_type": "bonus"}, 400),
        ({"amount": "0", "transaction_type": "bonus"}, 400),
        ({"amount": "-1", "transaction_type": "bonus"}, 400),
        ({"amount": "1", "transaction_type": "purchase"}, 400),
        ({"transaction_type": "bonus"}, 400),
        # Decimal() reads these as numbers ("1e5" is 100000): amounts are plain ASCII decimals only
        *(({"amount": a, "transaction_type": "bonus"}, 400) for a in ["1e5", "1E+2", "1_000", "\u0661", " 1", "+5"]),
        ({"amount": "-1e2", "transaction_type": "admin_adjustment"}, 400),
        ({"amount": "--1", "transaction_type": "admin_adjustment"}, 400),
    ],
)
async def test_bad_grants_are_refused_and_write_nothing(pool, upstreams, start_service, make_account, body, status):
    service = start_service(upstreams)
    account = await make_account()

    response = service.admin("POST", f"/admin/users/{account.user_id}/credits", json=body)

    assert response.status_code == status, response.text
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions") == 0


async def test_unknown_users_tiers_and_ids_are_clear_errors(upstreams, start_service):
    service = start_service(upstreams)

    unknown_user = service.admin("POST", f"/admin/users/{uuid.uuid4()}/keys", json={})
    bad_id = service.admin("POST", "/admin/users/not-a-uuid/credits", json={"amount": "1", "transaction_type": "bonus"})
    bad_tier = service.admin("POST", "/admin/users", json={"tier": "platinum"})
    bad_level = service.admin("POST", "/admin/users", json={"power_level": "turbo"})

    assert unknown_user.status_code == 404 and unknown_user.json()["error"]["code"] == "unknown_user"
    assert bad_id.status_code == 400 and bad_id.json()["error"]["code"] == "invalid_id"
    assert bad_tier.status_code == 400 and "Known tiers: trial, starter" in bad_tier.json()["error"]["message"]
    assert bad_level.status_code == 400 and bad_level.json()["error"]["code"] == "unknown_power_level"


async def test_the_admin_api_needs_the_token(pool, upstreams, start_service):
    service = start_service(upstreams)

    wrong = service.admin("POST", "/admin/users", token="guess", json={})
    missing = service.admin("POST", "/admin/users", token=None, json={})

    assert wrong.status_code == 401 and missing.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM user_credits") == 0


async def test_the_admin_api_is_off_without_a_token(upstreams, start_service):
    service = start_service(upstreams, admin_token=None)

    response = service.admin("POST", "/admin/users", json={})

    assert response.status_code == 404 and response.json()["error"]["code"] == "admin_api_off"


async def test_an_operator_reads_and_changes_a_user(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="5")

    shown = service.admin("GET", f"/admin/users/{account.user_id}")
    changed = service.admin(
        "PATCH", f"/admin/users/{account.user_id}", json={"tier": "enterprise", "power_level": "eco"}
    )
    refused = service.admin(
        "PATCH", f"/admin/users/{account.user_id}", json={"tier": "enterprise", "power_level": "warp"}
    )

    assert shown.json()["balance"] == "5.000000"
    assert (changed.json()["tier"], changed.json()["power_level"], changed.json()["monthly_allowance"]) == (
        "enterprise",
        "eco",
        None,
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_power_level"
    assert service.admin("GET", f"/admin/users/{account.user_id}").json()["tier"] == "enterprise", "kept"


async def test_keys_are_found_by_prefix_without_their_hashes(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account, other = await make_account(), await make_account()

    found = service.admin("GET", "/admin/keys", params={"prefix": account.key[:12]}).json()["data"]
    owned = service.admin("GET", "/admin/keys", params={"user_id": str(other.user_id)}).json()["data"]

    assert [k["id"] for k in found] == [str(account.key_id)] and "key_hash" not in found[0]
    assert [k["id"] for k in owned] == [str(other.key_id)]


async def test_a_new_price_is_served_at_once_and_a_deactivated_one_is_not(pool, upstreams, start_service, make_account):
    service = start_service(upstreams, catalog_ttl_seconds=3600)
    account = await make_account(credits_="100")
    client = service.client(account.key)
    client.chat.completions.create(model="gpt-4", messages=MESSAGES)  # the catalog is now cached for an hour

    added = service.admin(
        "POST",
        "/admin/model-prices",
        json={
            "provider": "together",
            "model": "meta-llama/Llama-3-70b",
            "input_usd_per_mtok": "0.9",
            "output_usd_per_mtok": "0.9",
        },
    )
    served = client.chat.completions.with_raw_response.create(model="meta-llama/Llama-3-70b", messages=MESSAGES)
    service.admin("PATCH", "/admin/model-prices/together/meta-llama/Llama-3-70b", json={"is_active": False})

    assert added.status_code == 201
    # 1000 + 500 tokens at $0.9 per 1M = $0.00135 = 0.0135 credits
    assert served.headers["x-credits-charged"] == "0.013500"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="meta-llama/Llama-3-70b", messages=MESSAGES)


async def test_packages_are_managed_with_exact_prices(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()

    created = service.admin(
        "POST",
        "/admin/packages",
        json={"name": "Mega Pack", "credits": "20000", "price_usd": "1200.00", "discount_percentage": "40"},
    )
    float_price = service.admin(
        "POST", "/admin/packages", json={"name": "Float Pack", "credits": "1", "price_usd": 0.1}
    )
    changed = service.admin("PATCH", f"/admin/packages/{created.json()['id']}", json={"is_active": False})
    listed = service.admin("GET", "/admin/packages").json()["data"]
    everything = service.admin("GET", "/admin/packages", params={"all": "1"}).json()["data"]
    on_sale = service.get("/v1/credits/packages", account.key).json()["data"]

    assert created.status_code == 201 and created.json()["price_usd"] == "1200.00"
    assert float_price.status_code == 400 and "decimal strings" in float_price.json()["error"]["message"]
    assert changed.json()["is_active"] is False
    assert "Mega Pack" not in {p["name"] for p in listed + on_sale} and "Mega Pack" in {p["name"] for p in everything}

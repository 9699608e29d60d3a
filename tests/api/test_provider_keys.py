"""BYOK keys: stored encrypted, used upstream, never shown, logged or kept in plaintext."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import httpx
import openai
import pytest

from tests.api.conftest import HTTP_TIMEOUT

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]
BYOK_KEY = "sk-users-own-openai-key-0123456789"


def add_key(service, account, provider="openai", api_key=BYOK_KEY, **extra) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/provider-keys",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"provider": provider, "api_key": api_key, **extra},
    )


async def all_stored_text(pool) -> str:
    """Every value of every table, as text (bytea as its raw bytes decoded leniently)."""
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    dump = []
    for table in tables:
        for row in await pool.fetch(f'SELECT * FROM "{table}"'):  # noqa: S608 - table names from the catalog
            for value in row.values():
                dump.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(dump)


async def test_a_byok_key_is_used_upstream_and_never_seen_again(pool, upstreams, start_service, make_account, caplog):
    caplog.set_level(logging.DEBUG)
    service = start_service(upstreams, byok_fee_ratio=Decimal("0.1"))
    account = await make_account(credits_="10")

    created = add_key(service, account, key_name="mine")
    raw = service.client(account.key).chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES)
    listed = service.get("/v1/provider-keys", account.key)

    assert created.status_code == 201
    assert BYOK_KEY not in created.text and created.json()["key_hint"] == "...6789"
    assert upstreams["openai"].requests[0]["headers"]["authorization"] == f"Bearer {BYOK_KEY}"
    # 0.6 credits of provider cost, of which the BYOK fee ratio (10%) is charged
    assert Decimal(raw.headers["x-credits-charged"]) == Decimal("0.06")
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE user_id = $1", account.user_id)
    assert row["is_byok"] and row["credits_used"] == Decimal("0.06") and row["cost_usd"] == Decimal("0.06")
    assert listed.status_code == 200 and BYOK_KEY not in listed.text
    assert [k["provider"] for k in listed.json()["data"]] == ["openai"]
    key_row = await pool.fetchrow("SELECT * FROM user_provider_keys WHERE user_id = $1", account.user_id)
    assert key_row["usage_count_this_month"] == 1 and key_row["last_used_at"] is not None
    assert BYOK_KEY not in await all_stored_text(pool)
    assert BYOK_KEY not in caplog.text


async def test_byok_with_no_fee_serves_a_user_with_no_credits(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="0")
    add_key(service, account)

    raw = service.client(account.key).chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES)

    assert raw.headers["x-credits-charged"] == "0.000000"
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE user_id = $1", account.user_id)
    assert row["is_byok"] and row["success"] and row["credits_used"] == 0


async def test_a_failing_provider_for_a_byok_only_user_is_logged_as_their_keys_failure(
    pool, upstreams, start_service, make_account
):
    for fake in upstreams.values():
        fake.status = 503
    service = start_service(upstreams)
    account = await make_account(credits_="0")  # nothing to spend: only their own key can serve them
    add_key(service, account)

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.status_code == 502
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE user_id = $1", account.user_id)
    assert row["is_byok"] and not row["success"] and row["credits_used"] == 0


async def test_providers_without_a_byok_key_use_the_platform_key(pool, upstreams, start_service, make_account):
    upstreams["openai"].status = 503
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    add_key(service, account)

    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert upstreams["openai"].requests[0]["headers"]["authorization"] == f"Bearer {BYOK_KEY}"
    assert upstreams["openrouter"].requests[0]["headers"]["authorization"] == "Bearer sk-platform-openrouter"
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE user_id = $1", account.user_id)
    assert not row["is_byok"] and row["credits_used"] == Decimal("0.6")


async def test_a_deleted_key_is_no_longer_used_and_its_secret_is_wiped(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    key_id = add_key(service, account).json()["id"]

    deleted = httpx.delete(
        f"{service.url}/v1/provider-keys/{key_id}", headers={"Authorization": f"Bearer {account.key}"}
    )
    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert deleted.status_code == 200
    assert upstreams["openai"].requests[0]["headers"]["authorization"] == "Bearer sk-platform-openai"
    assert service.get("/v1/provider-keys", account.key).json()["data"] == []
    assert await pool.fetchval("SELECT encrypted_key FROM user_provider_keys WHERE id = $1", key_id) == b""


async def test_bad_provider_keys_are_refused(upstreams, start_service, make_account, pool):
    service = start_service(upstreams)
    account = await make_account()

    unknown = add_key(service, account, provider="nonesuch")
    short = add_key(service, account, api_key="x")
    anonymous = httpx.post(f"{service.url}/v1/provider-keys", json={"provider": "openai", "api_key": BYOK_KEY})

    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_provider"
    assert short.status_code == 400 and short.json()["error"]["param"] == "api_key"
    assert anonymous.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM user_provider_keys") == 0


async def test_byok_is_off_without_an_encryption_key(upstreams, start_service, make_account):
    service = start_service(upstreams, encryption_key=None)
    account = await make_account()

    response = add_key(service, account)

    assert response.status_code == 503 and response.json()["error"]["code"] == "byok_disabled"


async def test_openai_sdk_sees_byok_requests_like_any_other(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()
    add_key(service, account)

    completion = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert isinstance(completion, openai.types.chat.ChatCompletion)


async def test_a_refused_byok_key_is_the_users_to_fix_and_costs_nothing(pool, upstreams, start_service, make_account):
    upstreams["openai"].status = 401
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    add_key(service, account)

    with pytest.raises(openai.BadRequestError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.code == "provider_key_rejected"
    assert not upstreams["openrouter"].requests, "the user's key problem is not papered over"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10


async def test_a_refused_platform_key_falls_over_to_the_next_provider(pool, upstreams, start_service, make_account):
    upstreams["openai"].status = 401
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    completion = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert completion.choices and len(upstreams["openrouter"].requests) == 1


async def active_keys(pool, user_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM user_provider_keys WHERE user_id = $1 AND is_active", user_id)


async def test_a_user_holds_at_most_20_active_provider_keys_even_when_adding_at_once(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account()
    other = await make_account()
    assert add_key(service, other, name="theirs").status_code == 201

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {account.key}"}, timeout=HTTP_TIMEOUT) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{service.url}/v1/provider-keys",
                    json={"provider": ("openai", "anthropic")[i % 2], "api_key": BYOK_KEY, "name": f"key {i}"},
                )
                for i in range(30)
            )
        )
    refused = [a for a in answers if a.status_code != 201]

    assert sum(a.status_code == 201 for a in answers) == 20
    assert {a.status_code for a in refused} == {409}
    assert {a.json()["error"]["code"] for a in refused} == {"too_many_provider_keys"}
    assert all("DELETE /v1/provider-keys/{id}" in a.json()["error"]["message"] for a in refused)
    assert await active_keys(pool, account.user_id) == 20
    assert await active_keys(pool, other.user_id) == 1, "another user's keys are theirs alone"
    assert add_key(service, other, name="another of theirs").status_code == 201, "the cap is per user"

    # a deleted key frees its slot, for one key only
    one = service.get("/v1/provider-keys", account.key).json()["data"][0]["id"]
    deleted = httpx.delete(f"{service.url}/v1/provider-keys/{one}", headers={"Authorization": f"Bearer {account.key}"})
    assert deleted.status_code == 200
    assert add_key(service, account, name="the replacement").status_code == 201
    again = add_key(service, account, name="one too many")
    assert again.status_code == 409 and again.json()["error"]["code"] == "too_many_provider_keys"
    assert await active_keys(pool, account.user_id) == 20
    assert await pool.fetchval("SELECT count(*) FROM user_provider_keys WHERE user_id = $1", account.user_id) == 21

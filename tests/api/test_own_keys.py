"""A key's owner lists, creates and revokes their own gateway keys, and nobody else's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import HTTP_TIMEOUT

OWN_KEY_FIELDS = {"id", "prefix", "name", "is_active", "expires_at", "created_at", "last_used_at", "revoked_at"}


def delete(service, path: str, key: str) -> httpx.Response:
    return httpx.delete(f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=HTTP_TIMEOUT)


async def usable_keys(pool, user_id) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM gateway_api_keys WHERE user_id = $1 AND is_active"
        " AND (expires_at IS NULL OR expires_at > now())",
        user_id,
    )


async def test_a_new_key_is_shown_once_works_and_is_listed_newest_first(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()
    other = await make_account()
    expires = datetime.now(UTC) + timedelta(days=7)

    created = service.post("/v1/keys", account.key, {"name": "laptop", "expires_at": expires.isoformat()})
    bare = service.post("/v1/keys", account.key, {})
    listed = service.get("/v1/keys", account.key)
    as_new_key = service.get("/v1/credits/balance", created.json()["key"])

    assert created.status_code == 201 and bare.status_code == 201
    new = created.json()
    assert set(new) == {"id", "key", "prefix", "name", "expires_at"}
    assert new["key"].startswith("sk-lg-") and new["key"].startswith(new["prefix"]) and new["name"] == "laptop"
    assert datetime.fromisoformat(new["expires_at"]) == expires
    assert as_new_key.status_code == 200 and as_new_key.json()["user_id"] == str(account.user_id)
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    rows = listed.json()["data"]
    assert [r["id"] for r in rows] == [bare.json()["id"], new["id"], str(account.key_id)], "newest first"
    assert all(set(r) == OWN_KEY_FIELDS for r in rows)
    assert new["key"] not in listed.text and account.key not in listed.text
    stored_hashes = [r["key_hash"] for r in await pool.fetch("SELECT key_hash FROM gateway_api_keys")]
    assert not any(h in listed.text for h in stored_hashes)
    others = service.get("/v1/keys", other.key).json()["data"]
    assert [r["id"] for r in others] == [str(other.key_id)], "only the caller's own keys"


async def test_a_bad_new_key_request_is_a_400_and_writes_nothing(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()

    refusals = [
        service.post("/v1/keys", account.key, {"expires_at": past}),
        service.post("/v1/keys", account.key, {"expires_at": "2000-01-01T00:00:00"}),
        service.post("/v1/keys", account.key, {"expires_at": "tomorrow"}),
        service.post("/v1/keys", account.key, {"name": "x" * 201}),
        service.post("/v1/keys", account.key, {"name": 7}),
    ]

    assert [r.status_code for r in refusals] == [400] * 5
    assert refusals[0].json()["error"]["code"] == "invalid_expiry"
    assert all(r.json()["error"]["param"] in ("expires_at", "name") for r in refusals)
    assert await pool.fetchval("SELECT count(*) FROM gateway_api_keys WHERE user_id = $1", account.user_id) == 1


async def test_a_user_holds_at_most_25_usable_keys_even_when_asking_at_once(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account()  # one key already
    for _ in range(19):
        assert service.post("/v1/keys", account.key, {}).status_code == 201
    # an expired key and a revoked one are not usable: they do not count
    await pool.execute(
        "UPDATE gateway_api_keys SET expires_at = now() - interval '1 second'"
        " WHERE id = (SELECT id FROM gateway_api_keys WHERE user_id = $1 AND id <> $2 LIMIT 1)",
        account.user_id,
        account.key_id,
    )
    assert await usable_keys(pool, account.user_id) == 19

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {account.key}"}, timeout=HTTP_TIMEOUT) as client:
        answers = await asyncio.gather(*(client.post(f"{service.url}/v1/keys", json={}) for _ in range(10)))
    refused = [a for a in answers if a.status_code != 201]

    assert sum(a.status_code == 201 for a in answers) == 6
    assert {a.status_code for a in refused} == {409}
    assert {a.json()["error"]["code"] for a in refused} == {"too_many_keys"}
    assert await usable_keys(pool, account.user_id) == 25
    one = service.get("/v1/keys", account.key).json()["data"][0]["id"]
    assert delete(service, f"/v1/keys/{one}", account.key).status_code == 200
    assert service.post("/v1/keys", account.key, {}).status_code == 201


async def test_only_the_owner_revokes_a_key_and_every_other_id_is_the_same_404(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account()
    other = await make_account()
    spare = service.post("/v1/keys", account.key, {"name": "spare"}).json()

    answers = {
        "another user's key": delete(service, f"/v1/keys/{other.key_id}", account.key),
        "no such key": delete(service, f"/v1/keys/{uuid.uuid4()}", account.key),
        "not an id": delete(service, "/v1/keys/not-a-uuid", account.key),
    }
    revoked = delete(service, f"/v1/keys/{spare['id']}", account.key)
    again = delete(service, f"/v1/keys/{spare['id']}", account.key)

    for why, answer in answers.items():
        assert answer.status_code == 404, why
        assert answer.json() == answers["no such key"].json(), why
    assert again.status_code == 404 and again.json() == answers["no such key"].json()
    assert revoked.status_code == 200 and revoked.json() == {"id": spare["id"], "revoked": True}
    assert service.get("/v1/credits/balance", spare["key"]).status_code == 401
    assert service.get("/v1/credits/balance", other.key).status_code == 200, "the other user's key still works"
    row = await pool.fetchrow(
        "SELECT is_active, revoked_at FROM gateway_api_keys WHERE id = $1", uuid.UUID(spare["id"])
    )
    assert not row["is_active"] and row["revoked_at"] is not None
    listed = {r["id"]: r for r in service.get("/v1/keys", account.key).json()["data"]}
    assert listed[spare["id"]]["is_active"] is False and listed[spare["id"]]["revoked_at"] is not None


async def test_a_key_may_revoke_itself(upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account()

    answer = delete(service, f"/v1/keys/{account.key_id}", account.key)

    assert answer.status_code == 200 and answer.json() == {"id": str(account.key_id), "revoked": True}
    assert service.get("/v1/keys", account.key).status_code == 401

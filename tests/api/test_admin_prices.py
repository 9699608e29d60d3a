"""The catalog through the service: POST /admin/model-prices/sync, the per-type prices of the
admin model-prices endpoints, and the embedded default starting with a current catalog."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import data_snapshot

from api.app import DEFAULT_PRICE_SOURCES


def catalog_price(provider_id: str, model: str, key: str) -> Decimal:
    provider = next(p for p in data_snapshot.get_snapshot().providers if p.id == provider_id)
    info = provider.find_model(model)
    assert info is not None
    price = getattr(info.get_prices(datetime.now(UTC)), key)
    return price if isinstance(price, Decimal) else price.base  # a tiered price's base


async def test_an_operator_syncs_the_catalog_and_their_change_is_kept_unless_forced(pool, upstreams, start_service):
    service = start_service(upstreams)

    def sync(**body):
        answer = service.admin("POST", "/admin/model-prices/sync", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    dry = sync(provider=["anthropic:acme"], dry_run=True)
    assert dry["dry_run"] and len(dry["added"]) > 20
    assert await pool.fetchval("SELECT count(*) FROM model_prices WHERE provider = 'acme'") == 0

    added = sync(provider=["anthropic:acme"])
    listed = {
        p["model"]: p for p in service.admin("GET", "/admin/model-prices").json()["data"] if p["provider"] == "acme"
    }
    assert {a["model"] for a in added["added"]} == set(listed)
    sonnet = listed["claude-sonnet-4-5"]
    assert Decimal(sonnet["cache_write_1h_usd_per_mtok"]) == catalog_price(
        "anthropic", "claude-sonnet-4-5", "cache_write_1h_mtok"
    )
    assert json.loads(sonnet["tiers"])["input"][0]["above"] == 200_000

    changed = service.admin("PATCH", "/admin/model-prices/acme/claude-opus-4-1", json={"cache_read_usd_per_mtok": "2"})
    kept = sync(provider=["anthropic:acme"])
    forced = sync(provider=["anthropic:acme"], force=True)

    assert changed.status_code == 200 and changed.json()["cache_read_usd_per_mtok"] == "2.000000"
    assert kept["kept"] == [
        {"provider": "acme", "model": "claude-opus-4-1", "reason": "changed by an operator since the last sync"}
    ]
    today = catalog_price("anthropic", "claude-opus-4-1", "cache_read_mtok")
    assert forced["updated"] == [
        {"provider": "acme", "model": "claude-opus-4-1", "changes": {"cache_read_usd_per_mtok": ["2", str(today)]}}
    ]


async def test_bad_sync_and_price_bodies_are_refused_and_write_nothing(pool, upstreams, start_service):
    service = start_service(upstreams)
    before = await pool.fetchval("SELECT count(*) FROM model_prices")

    refused = [
        service.admin("POST", "/admin/model-prices/sync", json={"provider": []}),
        service.admin("POST", "/admin/model-prices/sync", json={"provider": ["nope"]}),
        service.admin("POST", "/admin/model-prices/sync", json={"provider": ["openai:"]}),
        service.admin("POST", "/admin/model-prices/sync", json={"force": "yes"}),
        service.admin(
            "POST",
            "/admin/model-prices",
            json={"provider": "p", "model": "m", "input_usd_per_mtok": "1", "output_usd_per_mtok": "1", "tiers": []},
        ),
        service.admin(
            "POST",
            "/admin/model-prices",
            json={
                "provider": "p",
                "model": "m",
                "input_usd_per_mtok": "1",
                "output_usd_per_mtok": "1",
                "tiers": {"input": [{"above": -1, "usd_per_mtok": "2"}]},
            },
        ),
        service.admin("PATCH", "/admin/model-prices/openai/gpt-4", json={"input_usd_per_mtok": None}),
        service.admin("PATCH", "/admin/model-prices/openai/gpt-4", json={"reasoning_usd_per_mtok": "0.0000001"}),
    ]
    unauthorized = service.admin("POST", "/admin/model-prices/sync", token="wrong", json={})

    assert [r.status_code for r in refused] == [400] * len(refused), [r.text for r in refused]
    assert all(set(r.json()["error"]) >= {"message", "type", "code"} for r in refused)
    assert "nope" in refused[1].json()["error"]["message"]
    assert unauthorized.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM model_prices") == before


async def test_every_types_price_and_the_tiers_are_set_through_the_api(upstreams, start_service):
    service = start_service(upstreams)

    added = service.admin(
        "POST",
        "/admin/model-prices",
        json={
            "provider": "openai",
            "model": "house-model",
            "input_usd_per_mtok": "2",
            "output_usd_per_mtok": "8",
            "cache_read_usd_per_mtok": "0.5",
            "input_audio_usd_per_mtok": "40",
            "tiers": {"input": [{"above": 128000, "usd_per_mtok": "4"}]},
        },
    )
    cleared = service.admin(
        "PATCH",
        "/admin/model-prices/openai/house-model",
        json={"cache_read_usd_per_mtok": None, "output_image_usd_per_mtok": "30", "tiers": {}},
    )

    assert added.status_code == 201, added.text
    assert (added.json()["cache_read_usd_per_mtok"], added.json()["input_audio_usd_per_mtok"]) == (
        "0.500000",
        "40.000000",
    )
    assert json.loads(added.json()["tiers"]) == {"input": [{"above": 128000, "usd_per_mtok": "4"}]}
    assert cleared.status_code == 200, cleared.text
    assert (
        cleared.json()["cache_read_usd_per_mtok"] is None and cleared.json()["output_image_usd_per_mtok"] == "30.000000"
    )
    assert json.loads(cleared.json()["tiers"]) == {} and cleared.json()["input_audio_usd_per_mtok"] == "40.000000"


async def test_the_embedded_default_starts_with_a_current_catalog_once(pool, start_service, make_account, caplog):
    seeded = [dict(r) for r in await pool.fetch("SELECT * FROM model_prices ORDER BY provider, model")]

    with caplog.at_level(logging.INFO, logger="ledger.prices"):
        service = start_service()  # no LEDGER_PROVIDERS: the demo default
        account = await make_account(credits_="10")
        models = {m["id"] for m in service.get("/v1/models", account.key).json()["data"]}
        after_first = [dict(r) for r in await pool.fetch("SELECT * FROM model_prices ORDER BY provider, model")]
        start_service()
        after_second = [dict(r) for r in await pool.fetch("SELECT * FROM model_prices ORDER BY provider, model")]

    assert {"gpt-5.4", "gpt-4o", "o3", "gpt-4"} <= models, "today's models on the demo provider"
    by_key = {(r["provider"], r["model"]): r for r in after_first}
    for row in seeded:
        assert by_key[row["provider"], row["model"]] == row, "the seed's rows keep the seed's prices"
    synced = {r["provider"] for r in after_first if r["synced_prices"] is not None}
    assert synced == {source.rpartition(":")[2] for source in DEFAULT_PRICE_SOURCES}
    assert ("demo-anthropic", "claude-sonnet-4-5") in by_key
    assert after_second == after_first, "a second start changes nothing"
    first, second = [r.getMessage() for r in caplog.records if r.name == "ledger.prices"]
    added = len(after_first) - len(seeded)
    assert f": {added} added, 0 updated, 0 kept, " in first
    assert ": 0 added, 0 updated, 0 kept, " in second

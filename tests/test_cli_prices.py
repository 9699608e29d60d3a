"""`ledger prices sync` and the per-type prices of `ledger prices add/change/list`, as an operator
runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import data_snapshot

from tests.test_cli import ledger


def catalog_price(provider_id: str, model: str, key: str) -> Decimal:
    provider = next(p for p in data_snapshot.get_snapshot().providers if p.id == provider_id)
    info = provider.find_model(model)
    assert info is not None
    price = getattr(info.get_prices(datetime.now(UTC)), key)
    assert isinstance(price, Decimal)
    return price


def test_prices_sync_imports_keeps_an_operators_change_and_forces(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    def run(*args: str):
        result = ledger(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def together():
        return {p["model"]: p for p in run("prices", "list", "--all") if p["provider"] == "together"}

    dry = run("prices", "sync", "--provider", "openai:together", "--dry-run")
    assert dry["dry_run"] and len(dry["added"]) > 100 and together() == {}

    added = run("prices", "sync", "--provider", "openai:together")
    again = run("prices", "sync", "--provider", "openai:together")
    rows = together()
    assert {a["model"] for a in added["added"]} == set(rows)
    assert again["added"] == again["updated"] == [] and again["unchanged"] == len(rows)
    cache_read = catalog_price("openai", "gpt-4o", "cache_read_mtok")
    assert Decimal(rows["gpt-4o"]["cache_read_usd_per_mtok"]) == cache_read
    assert rows["gpt-4o"]["synced_from"].startswith("genai-prices ")

    run("prices", "change", "together", "gpt-4o", "--cache-read-usd-per-mtok", "0.5")
    kept = ledger("prices", "sync", "--provider", "openai:together", env=env)
    forced = ledger("prices", "sync", "--provider", "openai:together", "--force", env=env)

    assert kept.returncode == 0, kept.stderr
    assert "0 added, 0 updated, 1 kept" in kept.stdout.splitlines()[0]
    assert (
        "kept     together/gpt-4o: changed by an operator since the last sync (--force overwrites)"
        in kept.stdout.splitlines()
    )
    assert "skipped  openai:together whisper-1: prices audio_hours, input_audio_hours" in kept.stdout
    assert forced.returncode == 0, forced.stderr
    assert f"updated  together/gpt-4o: cache_read_usd_per_mtok 0.5 -> {cache_read}" in forced.stdout.splitlines()
    assert Decimal(together()["gpt-4o"]["cache_read_usd_per_mtok"]) == cache_read


def test_every_token_types_price_and_the_tiers_are_set_from_the_cli(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    def run(*args: str):
        result = ledger(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    tiers = '{"input": [{"above": 200000, "usd_per_mtok": "6"}], "output": [{"above": 200000, "usd_per_mtok": 22.5}]}'
    added = run("prices", "add", "acme", "big-1", "3", "15", "--cache-read-usd-per-mtok", "0.3", "--tiers", tiers)
    changed = run(
        "prices", "change", "acme", "big-1", "--cache-read-usd-per-mtok", "null", "--reasoning-usd-per-mtok", "20"
    )
    listed = next(p for p in run("prices", "list") if p["model"] == "big-1")

    assert added["cache_read_usd_per_mtok"] == "0.300000"
    assert json.loads(added["tiers"]) == {
        "input": [{"above": 200000, "usd_per_mtok": "6"}],
        "output": [{"above": 200000, "usd_per_mtok": "22.5"}],
    }
    assert changed["cache_read_usd_per_mtok"] is None and changed["reasoning_usd_per_mtok"] == "20.000000"
    assert listed["reasoning_usd_per_mtok"] == "20.000000" and listed["synced_from"] is None

    bad_tiers = ledger("prices", "add", "acme", "x", "1", "1", "--tiers", '{"inptu": []}', env=env)
    bad_null = ledger("prices", "change", "acme", "big-1", "--input-usd-per-mtok", "null", env=env)
    bad_source = ledger("prices", "sync", "--provider", "nope", env=env)
    for bad, message in (
        (bad_tiers, "tiers: 'inptu' is not a token type"),
        (bad_null, "input_usd_per_mtok must be a decimal"),
        (bad_source, "genai-prices has no provider 'nope'"),
    ):
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_prices_limits_refuses_a_file_that_is_not_litellms_table(tmp_path):
    bad = tmp_path / "table.json"
    bad.write_text("[1, 2]")
    done = ledger("prices", "limits", str(bad), env={})
    assert done.returncode == 1 and "cannot read LiteLLM's model table" in done.stderr

"""Seed 003's SQL, verbatim, through the real psql against a migrated database.

tests/seed_003/ holds each statement of the seed's Common Queries, Using Stored Functions,
Maintenance, Monitoring, Troubleshooting and Schema Version sections as the seed prints it; the
only change at run time is the seed's USER_UUID placeholder, replaced by a real user's id.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ledger.db.migrations import discover
from tests.psql import psql

SEED_DIR = Path(__file__).parent / "seed_003"


def seed_file(tmp_path: Path, name: str, user_id: uuid.UUID) -> Path:
    (source,) = SEED_DIR.glob(f"*__{name}.sql")
    target = tmp_path / source.name
    target.write_text(source.read_text().replace("USER_UUID", str(user_id)))
    return target


def run(database_url: str, tmp_path: Path, name: str, user_id: uuid.UUID) -> list[list[str]]:
    out = psql(database_url, file=seed_file(tmp_path, name, user_id))
    return [line.split("|") for line in out.splitlines() if line]


def test_every_seed_statement_is_covered():
    assert len(list(SEED_DIR.glob("*.sql"))) == 18


async def test_the_seed_walkthrough_runs_unchanged_and_adds_up(database_url, tmp_path):
    user = uuid.uuid4()

    run(database_url, tmp_path, "no_balance_record_for_user", user)
    assert run(database_url, tmp_path, "add_credits", user) == [["t", "100.000000", "1"]]
    assert run(database_url, tmp_path, "add_credits", user) == [["t", "100.000000", "1"]], "replay"
    # the trial tier's 100-credit allowance pays for the debit; the purchased balance stays whole
    assert run(database_url, tmp_path, "debit_credits", user) == [["t", "100.000000", "2"]]
    assert run(database_url, tmp_path, "check_quota_usage", user) == [["2.50"]]

    balance = run(database_url, tmp_path, "check_user_balance", user)
    assert balance == [[str(user), "100.000000", "trial", "balanced", "100.000000", "2.500000", "2.50"]]
    recent = run(database_url, tmp_path, "recent_transactions", user)
    assert [(r[1], r[2], r[3], r[5]) for r in recent] == [
        ("usage", "0.000000", "100.000000", "req_abc123"),
        ("purchase", "100.000000", "100.000000", "pi_stripe_123"),
    ]
    last = run(database_url, tmp_path, "transaction_failed_insufficient_balance", user)
    assert last[0] == ["100.000000"] and last[1][2] == "usage"


async def test_the_reporting_statements_run_unchanged(database_url, tmp_path):
    user = uuid.uuid4()
    run(database_url, tmp_path, "no_balance_record_for_user", user)
    run(database_url, tmp_path, "add_credits", user)

    assert run(database_url, tmp_path, "llm_usage_stats_last_24_hours", user) == []
    assert run(database_url, tmp_path, "user_byok_keys", user) == []
    assert run(database_url, tmp_path, "active_users_last_7_days", user) == [["0"]]
    # the seed's estimate multiplies credits by the package price: kept as printed
    assert run(database_url, tmp_path, "revenue_summary_this_month", user) == [["1", "100.000000", "1000.00000000"]]
    assert run(database_url, tmp_path, "top_models_this_month", user) == []
    assert run(database_url, tmp_path, "users_with_low_balance", user) == []
    assert run(database_url, tmp_path, "find_duplicate_requests", user) == []
    sizes = run(database_url, tmp_path, "check_table_sizes", user)
    assert {row[1] for row in sizes} == {
        "user_credits",
        "credit_transactions",
        "llm_usage_log",
        "user_provider_keys",
        "credit_packages",
        "power_level_configs",
    }
    versions = run(database_url, tmp_path, "schema_version_check", user)
    assert versions[0][0] == discover()[-1].version


@pytest.mark.parametrize("name", ["vacuum_tables_weekly", "rebuild_indexes_if_needed"])
async def test_the_maintenance_commands_run_unchanged(database_url, tmp_path, name):
    run(database_url, tmp_path, name, uuid.uuid4())

"""The `ledger` command as an operator runs it: migrate, and the embedded database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ledger.embedded import EmbeddedPostgres, binaries_dir
from tests.psql import psql

LEDGER = str(Path(sys.executable).parent / "ledger")


def ledger(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [LEDGER, *args], env={**clean, **env}, capture_output=True, text=True, timeout=180, check=False
    )


def test_migrate_applies_everything_then_is_a_no_op(empty_database_url):
    env = {"LEDGER_DATABASE_URL": empty_database_url}

    first = ledger("migrate", env=env)
    second = ledger("migrate", env=env)

    assert first.returncode == 0, first.stderr
    assert "applied 0001_ledger_schema.sql" in first.stdout
    assert second.returncode == 0 and second.stdout.strip() == "database is up to date"


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "ledger-data"
    EmbeddedPostgres(tmp_path / "ledger-data").stop()


def test_the_embedded_default_needs_no_configuration(data_dir):
    env = {"LEDGER_DATA_DIR": str(data_dir)}

    migrated = ledger("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied 0002_ledger_functions.sql" in migrated.stdout
    assert EmbeddedPostgres(data_dir).running_port() is None, "migrate stops the server it started"

    url = ledger("db", "url", env=env)
    assert url.returncode == 0, url.stderr
    assert psql(url.stdout.strip(), sql="SELECT count(*) FROM credit_packages").strip() == "4", (
        "data kept between runs, reachable by psql"
    )
    assert ledger("migrate", env=env).stdout.strip() == "database is up to date"
    assert EmbeddedPostgres(data_dir).running_port() is not None, "a server started by `db url` keeps running"

    assert ledger("db", "stop", env=env).returncode == 0
    assert EmbeddedPostgres(data_dir).running_port() is None


def test_the_embedded_server_refuses_a_wrong_password(data_dir):
    url = ledger("db", "url", env={"LEDGER_DATA_DIR": str(data_dir)}).stdout.strip()
    credentials = url.split("//", 1)[1].split("@", 1)[0]

    refused = subprocess.run(
        [str(binaries_dir() / "psql"), url.replace(credentials, "postgres:wrong"), "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr


def test_an_operator_manages_users_keys_and_credits_from_the_cli(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    user = json.loads(ledger("users", "create", "--email", "ops@example.com", "--tier", "starter", env=env).stdout)
    key = json.loads(ledger("keys", "create", user["user_id"], "--name", "ci", env=env).stdout)
    granted = ledger("credits", "add", user["user_id"], "12.5", "--type", "bonus", "--reference", "welcome", env=env)
    shown = json.loads(ledger("users", "show", user["user_id"], env=env).stdout)
    revoked = ledger("keys", "revoke", key["id"], env=env)
    revoked_again = ledger("keys", "revoke", key["id"], env=env)

    assert user["tier"] == "starter" and key["key"].startswith("sk-lg-")
    assert json.loads(granted.stdout)["new_balance"] == "12.500000"
    assert (shown["balance"], shown["monthly_allowance"], shown["tier"]) == (
        "12.500000",
        "1000.000000",
        "starter",
    )
    assert revoked.returncode == 0 and revoked_again.returncode == 1


def test_cli_errors_are_one_clear_line(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    bad_amount = ledger("credits", "add", str(uuid.uuid4()), "-3", env=env)
    bad_tier = ledger("users", "create", "--tier", "platinum", env=env)

    assert bad_amount.returncode == 1 and "amount must be greater than 0" in bad_amount.stderr
    assert bad_tier.returncode == 1 and "unknown tier 'platinum'" in bad_tier.stderr
    assert "Traceback" not in bad_amount.stderr + bad_tier.stderr

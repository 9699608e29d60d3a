"""The `ledger` command as an operator runs it: migrate, and the embedded database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ledger.cli.service import first_call_help
from ledger.db.embedded import EmbeddedPostgres, binaries_dir
from ledger.db.schema import schema_path
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


def test_db_schema_writes_what_the_migrations_give_from_a_throw_away_server(tmp_path, empty_database_url):
    target = tmp_path / "schema.sql"
    # a configured database is not where the schema comes from: the migrations alone decide
    written = ledger("db", "schema", "--output", str(target), env={"LEDGER_DATABASE_URL": empty_database_url})

    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"wrote {target}"
    assert target.read_text() == schema_path().read_text(), "run `ledger db schema` to regenerate sql/schema.sql"
    assert psql(empty_database_url, sql="SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").strip() == "0"


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

    def run(*args: str) -> dict:
        result = ledger(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    user = run("users", "create", "--email", "ops@example.com", "--tier", "starter")
    key = run("keys", "create", user["user_id"], "--name", "ci")
    granted = run("credits", "bonus", user["user_id"], "12.5", "--reason", "welcome", "--reference", "welcome-1")
    removed = run("credits", "adjust", user["user_id"], "-2.5", "--reason", "double grant")
    run("users", "set-tier", user["user_id"], "professional")
    run("users", "set-power-level", user["user_id"], "precision")
    shown = run("users", "show", user["user_id"])
    by_prefix = run("keys", "list", "--prefix", key["key"][:12])
    revoked = ledger("keys", "revoke", key["id"], env=env)
    revoked_again = ledger("keys", "revoke", key["id"], env=env)

    assert user["tier"] == "starter" and key["key"].startswith("sk-lg-")
    assert granted["new_balance"] == "12.500000" and removed["new_balance"] == "10.000000"
    assert (shown["balance"], shown["monthly_allowance"], shown["tier"], shown["power_level"]) == (
        "10.000000",
        "10000.000000",
        "professional",
        "precision",
    )
    assert [k["id"] for k in by_prefix] == [key["id"]] and "key_hash" not in by_prefix[0]
    assert revoked.returncode == 0 and revoked_again.returncode == 1
    reasons = psql(database_url, sql="SELECT transaction_type, description FROM credit_transactions ORDER BY id")
    assert reasons.split() == ["bonus|welcome", "admin_adjustment|double", "grant"]


def test_the_cli_prints_tables_for_people(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    packages = ledger("packages", "list", env=env)

    lines = packages.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "name", "credits"]
    assert any("Value Pack" in line and "45.00" in line for line in lines[2:])


def test_packages_and_prices_are_managed_from_the_cli(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    def run(*args: str):
        result = ledger(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    package = run("packages", "add", "Mega Pack", "20000", "1200.00", "--discount-percentage", "40")
    changed = run("packages", "change", package["id"], "--price-usd", "1100.00")
    run("packages", "deactivate", package["id"])
    on_sale = [p["name"] for p in run("packages", "list")]
    price = run("prices", "add", "together", "llama-3-70b", "0.9", "0.9", "--max-output-tokens", "8192")
    repriced = run("prices", "change", "together", "llama-3-70b", "--output-usd-per-mtok", "1.1")
    run("prices", "deactivate", "together", "llama-3-70b")
    active = [(p["provider"], p["model"]) for p in run("prices", "list")]
    everything = [(p["provider"], p["model"]) for p in run("prices", "list", "--all")]

    assert changed["price_usd"] == "1100.00" and "Mega Pack" not in on_sale
    assert price["max_output_tokens"] == 8192 and repriced["output_usd_per_mtok"] == "1.100000"
    assert ("together", "llama-3-70b") not in active and ("together", "llama-3-70b") in everything


def test_cli_errors_are_one_clear_line(database_url):
    env = {"LEDGER_DATABASE_URL": database_url}

    bad_amount = ledger("credits", "bonus", str(uuid.uuid4()), "-3", "--reason", "x", env=env)
    bad_tier = ledger("users", "create", "--tier", "platinum", env=env)
    bad_price = ledger("prices", "add", "openai", "gpt-x", "cheap", "1", env=env)

    assert bad_amount.returncode == 1 and "amount must be greater than 0" in bad_amount.stderr
    assert bad_tier.returncode == 1 and "unknown tier 'platinum'" in bad_tier.stderr
    assert bad_price.returncode == 1 and "input_usd_per_mtok must be a decimal" in bad_price.stderr
    assert "Traceback" not in bad_amount.stderr + bad_tier.stderr + bad_price.stderr


def test_psql_children_get_the_password_in_their_environment_not_their_command_line():
    from ledger.cli.service import psql_invocation
    from ledger.ops import find_query, psql_command

    url = "postgresql://ledger:s3cr%40t-pw@db.example:5432/ledger?sslmode=require"
    for argv, env in (psql_invocation(url, "-c", "SELECT 1"), psql_command(url, find_query("schema_version"), {})):
        assert not any("s3cr" in arg for arg in argv), argv
        assert "postgresql://ledger@db.example:5432/ledger?sslmode=require" in argv
        assert env["PGPASSWORD"] == "s3cr@t-pw"
    argv, env = psql_invocation("postgresql://u@h/db?password=pw2&sslmode=disable")
    assert "pw2" not in " ".join(argv) and env["PGPASSWORD"] == "pw2"


@pytest.mark.parametrize("command", [("db", "psql", "-X", "-c"), ("ops-shell",)])
def test_the_running_psql_has_no_password_on_its_command_line(database_url, command):
    """Read from /proc: what `ps` shows every user of the machine. psql's `\\!` runs a shell whose
    parent is psql itself."""
    from urllib.parse import urlsplit

    password = urlsplit(database_url).password
    if not password:
        pytest.skip("the test server's URL has no password")
    show_argv = "\\! tr '\\0' ' ' < /proc/$PPID/cmdline"
    if command == ("ops-shell",):
        # `ledger ops` runs psql on a query file: run_query, its runner, on a file that shows the argv
        from ledger.ops import OpsQuery, run_query

        query_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"argv_{uuid.uuid4().hex}.sql"  # noqa: S108
        query_file.write_text(show_argv + "\n")
        try:
            read, write = os.pipe()
            saved = os.dup(1)
            os.dup2(write, 1)
            try:
                code = run_query(database_url, OpsQuery("argv", query_file, "argv", ()), {})
            finally:
                os.dup2(saved, 1)
                os.close(write)
            out = os.read(read, 65536).decode()
            os.close(read)
        finally:
            query_file.unlink()
        assert code == 0
    else:
        result = ledger(*command, show_argv, env={"LEDGER_DATABASE_URL": database_url})
        assert result.returncode == 0, result.stderr
        out = result.stdout
    assert "psql" in out and password not in out, out


def test_the_first_run_message_points_at_both_dashboards():
    message = first_call_help("http://127.0.0.1:8123")

    assert "open http://127.0.0.1:8123/dashboard and sign in with that key" in message
    assert "LEDGER_ADMIN_TOKEN and open http://127.0.0.1:8123/admin/dashboard" in message

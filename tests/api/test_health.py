"""/healthz and /readyz of the running service."""

from __future__ import annotations

import httpx

from ledger.db.embedded import EmbeddedPostgres
from tests.service import running_service


def test_ready_on_a_migrated_database(database_url):
    with running_service({"LEDGER_DATABASE_URL": database_url}) as base:
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_not_ready_while_migrations_are_pending(empty_database_url):
    with running_service({"LEDGER_DATABASE_URL": empty_database_url}) as base:
        ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "migrations pending"
    assert "0001_ledger_schema.sql" in ready.json()["pending"]


def test_an_external_database_is_migrated_on_start_only_when_asked(empty_database_url):
    env = {"LEDGER_DATABASE_URL": empty_database_url, "LEDGER_MIGRATE_ON_START": "1"}
    with running_service(env) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200


def test_serve_on_the_embedded_default_migrates_and_stops_its_server_on_exit(tmp_path):
    data_dir = tmp_path / "ledger-data"
    with running_service({"LEDGER_DATA_DIR": str(data_dir)}) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert EmbeddedPostgres(data_dir).running_port() is not None
    assert EmbeddedPostgres(data_dir).running_port() is None

"""Configuration from LEDGER_ variables."""

from __future__ import annotations

from decimal import Decimal

from ledger.settings import Settings


def test_defaults_need_no_configuration(monkeypatch):
    for name in ("LEDGER_DATABASE_URL", "LEDGER_PROVIDERS", "LEDGER_ADMIN_TOKEN", "LEDGER_USD_PER_CREDIT"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.database_url is None and settings.providers is None and settings.admin_token is None
    assert settings.usd_per_credit == Decimal("0.10") and isinstance(settings.usd_per_credit, Decimal)


def test_empty_variables_count_as_unset(monkeypatch):
    monkeypatch.setenv("LEDGER_PROVIDERS", "")
    monkeypatch.setenv("LEDGER_DATABASE_URL", "")

    settings = Settings()

    assert settings.providers is None and settings.database_url is None


def test_providers_are_json_and_secrets_stay_hidden(monkeypatch):
    monkeypatch.setenv("LEDGER_PROVIDERS", '{"openai": {"base_url": "https://api.openai.com/v1", "api_key": "sk-x1"}}')
    monkeypatch.setenv("LEDGER_ADMIN_TOKEN", "admin-secret")

    settings = Settings()

    assert settings.providers["openai"].base_url == "https://api.openai.com/v1"
    assert settings.providers["openai"].timeout_s == 60
    assert "sk-x1" not in repr(settings) and "admin-secret" not in repr(settings)

"""Configuration from LEDGER_ variables."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

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
    assert settings.providers["openai"].timeout_s == 600, "the SDKs' own default: a long answer is not a failure"
    assert "sk-x1" not in repr(settings) and "admin-secret" not in repr(settings)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:pass@api.example.com/v1",
        "https://sk-secret@api.example.com/v1",
        "https://api.example.com/v1?key=sk-secret",
        "ftp://api.example.com/v1",
        "api.example.com/v1",
    ],
)
def test_a_provider_url_carrying_credentials_is_refused_at_load(monkeypatch, base_url):
    monkeypatch.setenv("LEDGER_PROVIDERS", json.dumps({"openai": {"base_url": base_url, "api_key": "sk-x"}}))

    with pytest.raises(ValidationError) as refused:
        Settings()

    # the refusal says why without echoing the secret it refuses
    assert "pass@" not in str(refused.value) and "sk-secret" not in str(refused.value)
    assert "base_url" in str(refused.value)


def test_body_limits_have_sane_defaults(monkeypatch):
    monkeypatch.setenv("LEDGER_MAX_WEBHOOK_BODY_BYTES", "2048")
    settings = Settings()
    assert settings.max_body_bytes == 1024 * 1024 and settings.max_chat_body_bytes == 32 * 1024 * 1024
    assert settings.max_webhook_body_bytes == 2048

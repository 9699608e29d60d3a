"""Configuration from the environment (prefix LEDGER_), one place for every knob."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("credit-ledger", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    # Empty: the embedded PostgreSQL under data_dir.
    database_url: SecretStr | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    # None: migrate on start when the database is the embedded one, not otherwise.
    migrate_on_start: bool | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    pool_min_size: int = 2
    pool_max_size: int = 20

    usd_per_credit: Decimal = Decimal("0.10")
    hold_ttl_seconds: int = Field(default=900, gt=0)


@cache
def get_settings() -> Settings:
    return Settings()

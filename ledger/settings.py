"""Configuration from the environment (prefix LEDGER_), one place for every knob."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("credit-ledger", appauthor=False))


class ProviderConfig(BaseModel):
    """One upstream, and the API it speaks: OpenAI's (chat completions, responses, embeddings,
    completions) or Anthropic's Messages. A request goes only to providers that speak its shape."""

    # a refused value is not echoed: it may be the very secret being refused
    model_config = ConfigDict(hide_input_in_errors=True)

    base_url: str
    api_key: SecretStr = SecretStr("")
    # seconds. timeout_s: the longest wait for a non-streamed answer's next bytes (a reasoning model
    # can think for minutes before its first byte: 600, the openai and anthropic SDKs' own default);
    # stream_idle_timeout_s: the longest silence between a stream's events (None: timeout_s), never a
    # total; connect_timeout_s: to open the connection (the only failure that falls over to the next
    # provider, see docs/upstream-timeouts.md)
    timeout_s: float = Field(default=600.0, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    api: Literal["openai", "anthropic"] = "openai"

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        """A URL is logged and shown (errors, metrics, httpx): it must never carry a secret. The
        provider's key goes in api_key, sent as a header."""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL with a host")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise ValueError("base_url must not carry credentials (user:password@); put the key in api_key")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not carry a query string or fragment (keys do not belong in URLs)")
        return value


def _web_address(value: str | None) -> str | None:
    """A page address to build links on: http(s), a host, nothing else that could carry a secret."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("public_url must be an http(s) URL with a host, e.g. https://billing.example.com")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("public_url must not carry credentials, a query string or a fragment")
    return value.rstrip("/")


class Settings(BaseSettings):
    # An empty variable counts as unset (docker compose passes `VAR: ${VAR:-}` through as "").
    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    # Empty: the embedded PostgreSQL under data_dir.
    database_url: SecretStr | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    # None: migrate on start when the database is the embedded one, not otherwise.
    migrate_on_start: bool | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    pool_min_size: int = 2
    pool_max_size: int = 20
    # Group commit of the metered calls (ledger.db.group_commit): the most calls (begins, settles,
    # failures) sent in one statement (1 sends every call alone), and how many such statements
    # may be in flight at once (the calls arriving meanwhile gather into the next).
    group_commit_max_batch: int = Field(default=64, ge=1)
    group_commit_in_flight: int = Field(default=1, ge=1)
    # Seconds a single SQL statement may take before the request fails instead of hanging.
    db_command_timeout_seconds: float = Field(default=30.0, gt=0)

    usd_per_credit: Decimal = Field(default=Decimal("0.10"), gt=0)
    hold_ttl_seconds: int = Field(default=900, gt=0)
    # A streaming client that reads nothing for this long is cut (and billed for what was generated).
    stream_send_timeout_seconds: float = Field(default=60.0, gt=0)

    # Bearer token of the admin API; None turns the admin API off.
    admin_token: SecretStr | None = None
    # Bearer token a Prometheus scrape of /metrics must send; None: /metrics is open (bind the
    # service to a private address, or set this: the figures include credits held).
    metrics_token: SecretStr | None = None
    # Seconds the figures /metrics reads from the database are reused, so scrapes (any number of
    # them) cost at most one query per this period.
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    # Upstream LLM providers, e.g. {"openai": {"base_url": "https://api.openai.com/v1", "api_key": "sk-..."}}.
    # None: the built-in demo provider only (`demo` and `demo-anthropic`, api/demo).
    providers: dict[str, ProviderConfig] | None = None
    # base64 of 32 random bytes: the AES-256-GCM key for BYOK provider keys. None: BYOK off.
    encryption_key: SecretStr | None = None
    # Comma-separated base64 keys that still decrypt stored BYOK keys while `ledger byok rotate`
    # re-encrypts them under encryption_key (docs/key-rotation.md). Dropped once it has run.
    encryption_keys_old: SecretStr | None = None

    def cipher_keys(self) -> tuple[str | None, str | None]:
        """The encryption key and the old ones, as text (for ledger.gateway.byok.cipher_of_settings)."""
        old = self.encryption_keys_old
        return (
            None if self.encryption_key is None else self.encryption_key.get_secret_value(),
            None if old is None else old.get_secret_value(),
        )

    # Share of a BYOK request's provider cost charged in credits (the user pays the provider).
    byok_fee_ratio: Decimal = Field(default=Decimal("0"), ge=0)
    # Stripe. No secret key: the purchase endpoints answer 503. No webhook secret: the webhook does.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Where people reach the service (https://billing.example.com): Stripe Checkout sends them back
    # to dashboard pages under it. None: the address each request came to (its Host header), which
    # is right only when every proxy in front passes the public host and nothing else.
    public_url: Annotated[str | None, AfterValidator(_web_address)] = None
    # Signs the dashboards' session cookies (at least 32 characters). None: a random secret per
    # `ledger serve`, shared by its workers, so sessions end when the service restarts. Replicas
    # behind one address need the same value.
    session_secret: SecretStr | None = Field(default=None, min_length=32)
    # How long a dashboard sign-in lasts.
    session_ttl_seconds: int = Field(default=8 * 3600, gt=0, le=30 * 24 * 3600)
    # Empty: Stripe itself. Tests and local development point it at a fake.
    stripe_api_base: str | None = None
    # Seconds between passes of the notification worker (webhooks and emails owed for events) when
    # it found nothing to do; 0 = off (another replica delivers, or nothing is sent).
    notify_interval_seconds: float = Field(default=2.0, ge=0)
    # Whether webhooks may point at private, loopback or link-local addresses (a gateway inside one
    # network, tests). Off by default: an endpoint is the customer's, the network is the operator's.
    webhook_allow_private_targets: bool = False
    # An endpoint is disabled (its owners emailed) after this many failed attempts in a row spanning
    # at least webhook_disable_after_seconds, so a short outage of a busy endpoint does not disable it.
    webhook_disable_after_failures: int = Field(default=10, ge=1)
    webhook_disable_after_seconds: float = Field(default=86400.0, ge=0)
    # Where PagerDuty channels send their events (Events API v2); a test points it at a fake.
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    # Seconds between background maintenance runs (expire holds, start due billing cycles); 0 = off.
    maintenance_interval_seconds: float = Field(default=60.0, ge=0)
    # How long model prices and power levels are cached in memory before being read again.
    catalog_ttl_seconds: float = Field(default=10.0, ge=0)
    # Largest request body, in bytes, per kind of route; a larger one is refused with a 413 before
    # it is read. Chat requests carry base64 images, so theirs is larger.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_chat_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # Most JSON separators (',' and ':') in a chat body, counted before it is parsed: 16 million
    # tiny values fit in 32 MiB and take seconds and gigabytes to parse.
    max_chat_json_separators: int = Field(default=1_000_000, gt=0)
    # Seconds a request's whole body may take to arrive, from the route's first read of it: a slower
    # upload (a client trickling bytes to hold a worker) is a 408, nothing held or written.
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)
    # Largest non-streamed upstream answer read; a larger one is a 502, read no further.
    max_upstream_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_webhook_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Email (verification, password resets, invitations): smtp://user:password@host:587 (STARTTLS
    # when offered), smtps://...:465 (TLS), smtp://host:25 (no sign-in). None: each email is written
    # to an .eml file under mail_outbox_dir and a line naming it to the log, so a newcomer can follow
    # its link without a mail server.
    smtp_url: SecretStr | None = None
    mail_from: str = Field(default="ledger@localhost", max_length=254)
    # None: `outbox` under data_dir.
    mail_outbox_dir: Path | None = None
    # Whether the dashboard still takes a gateway key to sign in to a personal workspace (the way
    # before people had accounts). Team workspaces are reached only by people who sign in.
    dashboard_key_sign_in: bool = True

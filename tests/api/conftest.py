"""The service on real uvicorn on 127.0.0.1, fake upstream providers, users and their keys."""

from __future__ import annotations

import base64
import faulthandler
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from api.app import create_app
from ledger.gateway import keys as gateway_keys
from ledger.money import accounts as users
from ledger.money import credits
from ledger.settings import ProviderConfig, Settings
from tests.fake_openai_apis import FakeOpenAIAPIs
from tests.fake_stripe import WEBHOOK_SECRET, FakeStripe, sign
from tests.fake_upstream import FakeUpstream, ServerThread, free_port
from tests.psql import psql

ADMIN_TOKEN = "admin-test-token"
# generous: a loaded CI machine must not turn a slow answer into a failed assertion
HTTP_TIMEOUT = 30.0
PLATFORM_KEYS = {
    "openai": "sk-platform-openai",
    "anthropic": "sk-platform-anthropic",
    "openrouter": "sk-platform-openrouter",
    "together": "sk-platform-together",
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test that failed on a timeout dumps every thread's stack while the service under test is
    still running: where a request got stuck is then in the CI log."""
    report = yield
    if (
        call.when == "call"
        and report.failed
        and call.excinfo is not None
        and call.excinfo.errisinstance((openai.APITimeoutError, httpx.TimeoutException))
    ):
        faulthandler.dump_traceback(all_threads=True)
        if (url := item.funcargs.get("database_url")) is not None:
            sys.stderr.write(psql(url, sql=SESSIONS))
    return report


SESSIONS = """
SELECT pid, state, wait_event_type, wait_event, now() - xact_start AS in_transaction_for,
       pg_blocking_pids(pid) AS blocked_by, left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
  FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    """One fake per provider name, each a real HTTP server."""
    fakes = {name: FakeUpstream(name) for name in PLATFORM_KEYS}
    for fake in fakes.values():
        fake.server = ServerThread(fake.app()).start()
    yield fakes
    for fake in fakes.values():
        assert fake.server is not None
        fake.server.stop()


@pytest.fixture
def openai_apis() -> Iterator[FakeOpenAIAPIs]:
    """The `openai` provider speaking embeddings and legacy completions, a real HTTP server."""
    fake = FakeOpenAIAPIs("openai").start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    server = ServerThread(fake.app()).start()
    fake.api_base = server.url
    yield fake
    server.stop()


@dataclass
class Service:
    url: str
    settings: Settings

    def client(self, key: str, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=HTTP_TIMEOUT, **kwargs)

    def async_client(self, key: str, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=HTTP_TIMEOUT, **kwargs)

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, params=params, timeout=HTTP_TIMEOUT
        )

    def webhook(self, payload: str | dict[str, Any], signature: str | None = "sign") -> httpx.Response:
        body = payload if isinstance(payload, str) else json.dumps(payload)
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            signature = sign(body)
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return httpx.post(f"{self.url}/webhooks/stripe", content=body, headers=headers, timeout=HTTP_TIMEOUT)

    def post(self, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=HTTP_TIMEOUT
        )

    def admin(self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)


@pytest.fixture
def start_service(database_url: str) -> Iterator[Callable[..., Service]]:
    """Starts the app on uvicorn with the given provider fakes and settings."""
    running: list[ServerThread] = []

    def start(upstreams: Mapping[str, Any] | None = None, *, timeout_s: float = 5.0, **overrides: Any) -> Service:
        """`upstreams`: provider name -> a fake with `base_url` (and `api`, "openai" when it has none)."""
        providers = None
        if upstreams is not None:
            providers = {
                name: ProviderConfig(
                    base_url=fake.base_url,
                    api_key=PLATFORM_KEYS.get(name, f"sk-platform-{name}"),
                    timeout_s=timeout_s,
                    api=getattr(fake, "api", "openai"),
                )
                for name, fake in upstreams.items()
            }
        values: dict[str, Any] = {
            "database_url": database_url,
            "providers": providers,
            "admin_token": ADMIN_TOKEN,
            "encryption_key": base64.b64encode(os.urandom(32)).decode(),
            "catalog_ttl_seconds": 0,
            "pool_min_size": 1,
            "pool_max_size": 30,
            "stripe_webhook_secret": WEBHOOK_SECRET,
        }
        settings = Settings(**{**values, **overrides})
        port = free_port()  # known before the app: the demo provider's address is the service's own
        server = ServerThread(create_app(settings, database_url, port=port), port=port)
        running.append(server.start())
        return Service(server.url, settings)

    yield start
    for server in running:
        server.stop()


@dataclass
class Account:
    user_id: uuid.UUID
    key: str
    key_id: uuid.UUID


@pytest.fixture
def make_account(pool: asyncpg.Pool) -> Callable[..., Any]:
    """A user with a gateway key; optional purchased credits and allowance."""

    async def make(
        *,
        credits_: str = "0",
        monthly_allowance: str | None = "0",
        power_level: str = "balanced",
        tier: str = "trial",
    ) -> Account:
        user = await users.create_user(pool, None, tier, power_level)
        await pool.execute(
            "UPDATE user_credits SET monthly_allowance = $2 WHERE user_id = $1",
            user["user_id"],
            None if monthly_allowance is None else Decimal(monthly_allowance),
        )
        if Decimal(credits_) > 0:
            await credits.add_user_credits(pool, user["user_id"], credits_, "bonus", f"start-{uuid.uuid4()}")
        key = await gateway_keys.create_key(pool, user["user_id"], "test key")
        return Account(user["user_id"], key.key, key.id)

    return make

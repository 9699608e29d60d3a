"""The metered engine, driven directly (no HTTP server in front of it): how many SQL round trips
a request takes, and that a BYOK key's use is counted once per request."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from ledger.errors import InsufficientCredits, Unauthenticated
from ledger.gateway import byok
from ledger.gateway.adapters.chat import parse_chat_request
from ledger.gateway.catalog import Catalog
from ledger.gateway.engine import Completion, Gateway, MeteredEvents
from ledger.gateway.keys import create_key
from ledger.gateway.upstream import open_session
from ledger.metrics import Metrics
from ledger.settings import ProviderConfig, Settings
from tests.fake_upstream import FakeUpstream, ServerThread

MESSAGES = [{"role": "user", "content": "Say hello."}]


class CountingPool:
    """The real pool, recording each statement sent to it: one statement, one round trip."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[str] = []

    async def fetch(self, query: str, *args: Any) -> Any:
        self.statements.append(query)
        return await self.pool.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.statements.append(query)
        return await self.pool.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.statements.append(query)
        return await self.pool.fetchval(query, *args)

    def functions(self) -> list[str]:
        """The stored function each statement called, in order."""
        return [statement.split("FROM ")[-1].split("(")[0].strip() for statement in self.statements]


@pytest.fixture
def openai_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream("openai", usage=(10, 5))
    fake.server = ServerThread(fake.app()).start()
    yield fake
    fake.server.stop()


@pytest.fixture
async def gateway(pool: asyncpg.Pool, openai_upstream: FakeUpstream) -> AsyncIterator[tuple[Gateway, CountingPool]]:
    # a BYOK request pays a fee (else it holds nothing and its hold would take no round trip)
    settings = Settings(encryption_key=base64.b64encode(os.urandom(32)).decode(), byok_fee_ratio=Decimal("0.05"))
    assert settings.encryption_key is not None
    providers = {"openai": ProviderConfig(base_url=openai_upstream.base_url, api_key="sk-platform")}
    catalog = Catalog(ttl_seconds=3600)
    await catalog.get(pool)  # the catalog is cached: its reads are not a request's
    counting = CountingPool(pool)
    session = open_session()
    cipher = byok.KeyCipher(settings.encryption_key.get_secret_value())
    yield Gateway(counting, session, settings, providers, catalog, cipher, Metrics()), counting
    await session.close()


async def new_key(pool: asyncpg.Pool, make_user: Any, credits: str) -> tuple[uuid.UUID, str]:
    user_id = await make_user(credits=credits)
    return user_id, (await create_key(pool, user_id, "engine test")).key


async def test_a_request_takes_two_round_trips(pool, make_user, gateway):
    engine, counting = gateway
    _, key = await new_key(pool, make_user, "100")

    outcome = await engine.serve(key, parse_chat_request({"model": "gpt-4", "messages": MESSAGES}), None, "req_two")

    assert isinstance(outcome, Completion) and outcome.headers["x-credits-charged"] != "0"
    assert counting.functions() == ["begin_llm_request", "settle_llm_request"]


async def test_a_streamed_request_takes_two_round_trips(pool, make_user, gateway):
    engine, counting = gateway
    _, key = await new_key(pool, make_user, "100")
    call = parse_chat_request({"model": "gpt-4", "messages": MESSAGES, "stream": True})

    outcome = await engine.serve(key, call, None, "req_stream")
    assert isinstance(outcome, MeteredEvents)
    events = [event async for event in outcome.events]
    await outcome.finish(False)

    assert events[-1] == b"data: [DONE]\n\n"
    assert counting.functions() == ["begin_llm_request", "settle_llm_request"]


async def test_a_refused_request_takes_one_round_trip_and_never_goes_upstream(
    pool, make_user, gateway, openai_upstream
):
    engine, counting = gateway
    _, key = await new_key(pool, make_user, "0.000001")

    with pytest.raises(InsufficientCredits):
        await engine.serve(key, parse_chat_request({"model": "gpt-4", "messages": MESSAGES}), None, "req_poor")

    assert counting.functions() == ["begin_llm_request"] and openai_upstream.requests == []


async def test_an_unknown_key_takes_one_round_trip(gateway):
    engine, counting = gateway

    with pytest.raises(Unauthenticated):
        await engine.serve("sk-lg-" + "x" * 43, parse_chat_request({"model": "gpt-4", "messages": MESSAGES}), None, "r")

    assert counting.functions() == ["begin_llm_request"]


async def test_a_byok_request_takes_three_round_trips_and_counts_the_key_once(
    pool, make_user, gateway, openai_upstream
):
    engine, counting = gateway
    user_id, key = await new_key(pool, make_user, "100")
    assert engine.cipher is not None
    own = await byok.add_key(pool, engine.cipher, user_id, "openai", "sk-users-own-key")

    outcome = await engine.serve(key, parse_chat_request({"model": "gpt-4", "messages": MESSAGES}), None, "req_byok")

    assert isinstance(outcome, Completion)
    # the keys come back with the key lookup; the hold needs the routes they make
    assert counting.functions() == ["begin_llm_request", "reserve_controlled_request", "settle_llm_request"]
    assert openai_upstream.requests[-1]["headers"]["authorization"] == "Bearer sk-users-own-key"
    count = "SELECT usage_count_this_month FROM user_provider_keys WHERE id = $1"
    assert await pool.fetchval(count, own["id"]) == 1

    # the settle retried (a lost connection's replay) does not count the use again
    usage = json.dumps({"request_id": "req_byok", "user_id": str(user_id), "model": "gpt-4"})
    await pool.fetchrow("SELECT * FROM settle_llm_request(NULL, 0, $1::jsonb, $2)", usage, own["id"])
    assert await pool.fetchval(count, own["id"]) == 1
    assert await pool.fetchval("SELECT count(*) FROM llm_usage_log WHERE request_id = 'req_byok'") == 1

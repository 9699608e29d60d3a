"""Budgets' periods and each rate-limit strategy's own definition, on the server whose clock the
test sets (libfaketime, tests/clock.py): periods roll exactly at their UTC boundary and each
strategy admits exactly what it defines."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.clock import ServerClock
from tests.controls.sql_requests import Wallet, begin, fail, make_wallet, settle

ONE = Decimal(1)


@pytest.fixture
async def db(clock_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(clock_database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


async def budget(db: asyncpg.Pool, wallet: Wallet, amount: str, period: str, hard: bool = True) -> uuid.UUID:
    return await db.fetchval(
        """INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period, hard)
           VALUES ($1::uuid, 'workspace', $1::uuid::text, $2, $3, $4) RETURNING id""",
        wallet.workspace_id,
        Decimal(amount),
        period,
        hard,
    )


async def spend(db: asyncpg.Pool, wallet: Wallet, credits: Decimal) -> str:
    """One request that costs `credits`: its hold state."""
    request_id, row = await begin(db, wallet, credits)
    if row["hold_state"] == "held":
        await settle(db, wallet, request_id, row["hold_id"], credits)
    return str(row["hold_state"])


async def test_a_daily_budget_rolls_exactly_at_utc_midnight(db, clock: ServerClock):
    clock.set(datetime(2027, 6, 30, 23, 0, tzinfo=UTC))
    wallet = await make_wallet(db)
    budget_id = await budget(db, wallet, "2", "daily")
    assert await spend(db, wallet, ONE) == "held"
    assert await spend(db, wallet, ONE) == "held"
    clock.set(datetime(2027, 6, 30, 23, 59, 59, 900000, tzinfo=UTC))
    assert await spend(db, wallet, ONE) == "budget"  # still the 30th
    _request_id, refused = await begin(db, wallet, ONE)
    message = json.loads(refused["controls"])["refusal"]["message"]
    assert "resets at 2027-07-01T00:00:00Z" in message and "daily budget of 2.000000 credits" in message
    clock.set(datetime(2027, 7, 1, 0, 0, 0, 0, tzinfo=UTC))
    assert await spend(db, wallet, ONE) == "held"  # a new day, a new budget
    row = await db.fetchrow("SELECT * FROM budgets WHERE id = $1", budget_id)
    assert (row["period_start"], row["spent"]) == (datetime(2027, 7, 1, tzinfo=UTC), ONE)
    closed = await db.fetchrow("SELECT * FROM budget_history WHERE budget_id = $1", budget_id)
    assert (closed["period_start"], closed["period_end"], closed["spent"]) == (
        datetime(2027, 6, 30, tzinfo=UTC),
        datetime(2027, 7, 1, tzinfo=UTC),
        Decimal(2),
    )


async def test_a_monthly_budget_spans_a_leap_february_whole(db, clock: ServerClock):
    clock.set(datetime(2028, 2, 1, 0, 0, tzinfo=UTC))
    wallet = await make_wallet(db)
    budget_id = await budget(db, wallet, "3", "monthly")
    assert await spend(db, wallet, ONE) == "held"
    clock.set(datetime(2028, 2, 29, 23, 59, 59, 900000, tzinfo=UTC))  # the leap day is February's
    assert await spend(db, wallet, Decimal(2)) == "held"
    assert await spend(db, wallet, ONE) == "budget"
    clock.set(datetime(2028, 3, 1, tzinfo=UTC))
    assert await spend(db, wallet, Decimal(3)) == "held"
    closed = await db.fetchrow("SELECT * FROM budget_history WHERE budget_id = $1", budget_id)
    assert (closed["period_start"], closed["period_end"], closed["spent"]) == (
        datetime(2028, 2, 1, tzinfo=UTC),
        datetime(2028, 3, 1, tzinfo=UTC),
        Decimal(3),
    )


async def test_a_period_no_request_touched_still_leaves_its_history(db, clock: ServerClock):
    clock.set(datetime(2027, 1, 5, 12, 0, tzinfo=UTC))
    wallet = await make_wallet(db)
    budget_id = await budget(db, wallet, "10", "weekly")
    await spend(db, wallet, ONE)
    clock.set(datetime(2027, 1, 11, 0, 0, 1, tzinfo=UTC))  # the next ISO week (a Monday)
    assert await db.fetchval("SELECT roll_budget_periods()") == 1
    closed = await db.fetchrow("SELECT * FROM budget_history WHERE budget_id = $1", budget_id)
    assert (closed["period_start"], closed["period_end"], closed["spent"]) == (
        datetime(2027, 1, 4, tzinfo=UTC),
        datetime(2027, 1, 11, tzinfo=UTC),
        ONE,
    )


async def test_a_soft_budget_serves_and_alerts_each_threshold_once(db, clock: ServerClock):
    clock.set(datetime(2027, 5, 1, tzinfo=UTC))
    wallet = await make_wallet(db)
    budget_id = await budget(db, wallet, "4", "monthly", hard=False)
    for _ in range(6):
        assert await spend(db, wallet, ONE) == "held"
    request_id, row = await begin(db, wallet, ONE)
    assert json.loads(row["controls"])["soft"] == [str(budget_id)]
    await fail(db, wallet, request_id, row["hold_id"])
    alerts = await db.fetch(
        "SELECT threshold, spent FROM budget_alerts WHERE budget_id = $1 ORDER BY threshold", budget_id
    )
    assert [(a["threshold"], a["spent"]) for a in alerts] == [(50, 2), (80, 4), (100, 4)]
    clock.set(datetime(2027, 6, 1, tzinfo=UTC))
    await spend(db, wallet, Decimal(2))
    assert await db.fetchval("SELECT count(*) FROM budget_alerts WHERE budget_id = $1", budget_id) == 4


async def limit(
    db: asyncpg.Pool,
    wallet: Wallet,
    strategy: str = "sliding_window",
    requests: int | None = None,
    window_seconds: int | None = None,
    tokens_per_minute: int | None = None,
    max_concurrent: int | None = None,
) -> uuid.UUID:
    return await db.fetchval(
        """INSERT INTO rate_limits (workspace_id, scope_type, scope_id, strategy, requests, window_seconds,
                                    tokens_per_minute, max_concurrent)
           VALUES ($1, 'key', $2, $3, $4, $5, $6, $7) RETURNING id""",
        wallet.workspace_id, str(wallet.key_id), strategy, requests, window_seconds, tokens_per_minute, max_concurrent,
    )  # fmt: skip


async def admitted(db: asyncpg.Pool, wallet: Wallet, n: int) -> int:
    passed = 0
    for _ in range(n):
        passed += await spend(db, wallet, Decimal("0.01")) == "held"
    return passed


T0 = datetime(2027, 3, 3, 10, 0, 0, tzinfo=UTC)


async def test_fixed_window_admits_r_per_aligned_window(db, clock: ServerClock):
    clock.set(T0 + timedelta(seconds=50))
    wallet = await make_wallet(db)
    await limit(db, wallet, strategy="fixed_window", requests=5, window_seconds=60)
    assert await admitted(db, wallet, 8) == 5
    clock.set(T0 + timedelta(seconds=60))  # the next window: all 5 again, though 10 s passed
    assert await admitted(db, wallet, 8) == 5


async def test_sliding_window_admits_r_in_any_window(db, clock: ServerClock):
    clock.set(T0)
    wallet = await make_wallet(db)
    await limit(db, wallet, strategy="sliding_window", requests=4, window_seconds=60)
    assert await admitted(db, wallet, 2) == 2
    clock.set(T0 + timedelta(seconds=30))
    assert await admitted(db, wallet, 5) == 2
    clock.set(T0 + timedelta(seconds=60, milliseconds=100))  # the first two left the window
    assert await admitted(db, wallet, 5) == 2
    _request_id, row = await begin(db, wallet, Decimal("0.01"))
    retry = json.loads(row["controls"])["refusal"]["retry_after"]
    assert 29 < retry <= 30  # when the two of T0+30s leave


async def test_token_bucket_bursts_then_refills_at_its_rate(db, clock: ServerClock):
    clock.set(T0)
    wallet = await make_wallet(db)
    await limit(db, wallet, strategy="token_bucket", requests=6, window_seconds=60)  # one per 10 s
    assert await admitted(db, wallet, 10) == 6
    clock.set(T0 + timedelta(seconds=25))
    assert await admitted(db, wallet, 10) == 2


async def test_leaky_bucket_admits_at_its_rate_only(db, clock: ServerClock):
    clock.set(T0)
    wallet = await make_wallet(db)
    await limit(db, wallet, strategy="leaky_bucket", requests=6, window_seconds=60)
    assert await admitted(db, wallet, 10) == 1  # no burst
    clock.set(T0 + timedelta(seconds=10.5))  # (the clock ticks on from each set: a margin)
    assert await admitted(db, wallet, 10) == 1
    clock.set(T0 + timedelta(seconds=15))
    assert await admitted(db, wallet, 10) == 0
    clock.set(T0 + timedelta(seconds=21))
    assert await admitted(db, wallet, 10) == 1


async def test_tokens_per_minute_holds_the_bound_and_settles_to_the_actual(db, clock: ServerClock):
    clock.set(T0)
    wallet = await make_wallet(db)
    limit_id = await limit(db, wallet, tokens_per_minute=6000)
    request_id, row = await begin(db, wallet, ONE, tokens=5000)
    assert row["hold_state"] == "held"
    assert (await begin(db, wallet, ONE, tokens=2000))[1]["hold_state"] == "rate_limit"
    await settle(db, wallet, request_id, row["hold_id"], ONE, tokens=500)  # 4500 given back
    level = await db.fetchval("SELECT tokens_level FROM rate_limits WHERE id = $1", limit_id)
    assert 499 <= level <= 500
    request_id, row = await begin(db, wallet, ONE, tokens=5000)
    assert row["hold_state"] == "held"
    await fail(db, wallet, request_id, row["hold_id"])  # a release gives all of it back
    assert await db.fetchval("SELECT tokens_level FROM rate_limits WHERE id = $1", limit_id) <= 500
    too_big = json.loads((await begin(db, wallet, ONE, tokens=7000))[1]["controls"])["refusal"]
    assert too_big["retry_after"] is None and "more than the limit" in too_big["message"]


async def test_max_concurrent_counts_open_holds_and_frees_on_every_ending(db, clock: ServerClock):
    clock.set(T0)
    wallet = await make_wallet(db)
    limit_id = await limit(db, wallet, max_concurrent=2)
    first, a = await begin(db, wallet, ONE)
    _second, b = await begin(db, wallet, ONE)
    assert (a["hold_state"], b["hold_state"]) == ("held", "held")
    assert (await begin(db, wallet, ONE))[1]["hold_state"] == "rate_limit"
    await settle(db, wallet, first, a["hold_id"], ONE)
    third, c = await begin(db, wallet, ONE)
    assert c["hold_state"] == "held"
    await fail(db, wallet, third, c["hold_id"])
    clock.set(T0 + timedelta(minutes=6))  # the second's hold expires: its slot frees
    _fourth, d = await begin(db, wallet, ONE)
    assert d["hold_state"] == "held"
    assert await db.fetchval("SELECT in_flight FROM rate_limits WHERE id = $1", limit_id) == 1

"""The money rule of budgets, as a property over generated budgets and concurrent request mixes
on a moving server clock (libfaketime, tests/clock.py):

- a hard budget's spend in a period never passes its amount, however many requests run at once;
- its `held` is exactly what the open holds on its path hold;
- its `spent` is exactly the sum of the usage rows on its path written in its period, and each
  closed period's budget_history row is the sum of the rows written in that period.

Requests are made as the engine makes them (begin_llm_request, then settle, release, or nothing:
a client cut off before its settle, whose hold expires), many at once on separate connections.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.clock import ClockServer, ServerClock, create_clock_database, drop_clock_database
from tests.controls.sql_requests import TTL, Wallet, begin, fail, make_wallet, settle

END_USERS = ["alice", "bob"]
MODELS = ["gpt-4", "gpt-4o-mini"]
CENT = Decimal("0.01")


@dataclass
class Harness:
    url: str
    clock: ServerClock


@pytest.fixture(scope="module")
def harness(clock_server: ClockServer) -> Iterator[Harness]:
    url = create_clock_database(clock_server)
    yield Harness(url, clock_server.clock)
    clock_server.clock.reset()
    drop_clock_database(clock_server, url)


budget_specs = st.lists(
    st.fixed_dictionaries(
        {
            "scope": st.sampled_from(["workspace", "project", "key", "end_user"]),
            "model": st.sampled_from([None, None, "gpt-4o*", "gpt-4"]),
            "amount": st.integers(1, 40).map(lambda n: Decimal(n) / 4),
            "period": st.sampled_from(["daily", "weekly", "monthly", "yearly", "lifetime"]),
            "hard": st.booleans(),
        }
    ),
    min_size=1,
    max_size=3,
)
request_mix = st.lists(
    st.fixed_dictionaries(
        {
            "hold": st.integers(1, 300).map(lambda n: Decimal(n) / 100),
            # the cost against the hold: below, equal, above (cut to the hold), nothing
            "cost": st.sampled_from([Decimal("0.3"), Decimal(1), Decimal("1.7"), Decimal(0)]),
            "ending": st.sampled_from(["settle", "settle", "release", "cut"]),
            "model": st.sampled_from(MODELS),
            "end_user": st.sampled_from([None, *END_USERS]),
        }
    ),
    min_size=1,
    max_size=6,
)
moves = st.sampled_from(
    [timedelta(seconds=1), timedelta(minutes=7), timedelta(hours=5), timedelta(days=1), timedelta(days=9), "boundary"]
)
starts = st.sampled_from(
    [
        datetime(2028, 2, 28, 23, 59, 58, tzinfo=UTC),  # a leap day ahead
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),  # a year's end
        datetime(2027, 3, 14, 12, 0, tzinfo=UTC),
    ]
)


def next_midnight(when: datetime) -> datetime:
    return (when + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


async def create_budgets(conn: asyncpg.Connection, wallet: Wallet, specs: list[dict[str, Any]]) -> list[uuid.UUID]:
    ids = []
    for spec in specs:
        scope_id = {
            "workspace": str(wallet.workspace_id),
            "project": str(wallet.project_id),
            "key": str(wallet.key_id),
            "end_user": END_USERS[0],
        }[spec["scope"]]
        ids.append(
            await conn.fetchval(
                """INSERT INTO budgets (workspace_id, scope_type, scope_id, model_pattern, amount, period, hard)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
                wallet.workspace_id,
                spec["scope"],
                scope_id,
                spec["model"],
                spec["amount"],
                spec["period"],
                spec["hard"],
            )
        )
    return ids


async def one_request(pool: asyncpg.Pool, wallet: Wallet, request: dict[str, Any]) -> None:
    async with pool.acquire() as conn:
        request_id, row = await begin(
            conn, wallet, request["hold"], model=request["model"], end_user=request["end_user"]
        )
        if row["hold_state"] != "held":
            assert row["hold_state"] == "budget", row["hold_state"]
            event("refused by a hard budget")
            return
        await asyncio.sleep(0)
        who = {"model": request["model"], "end_user": request["end_user"]}
        if request["ending"] == "settle":
            cost = (request["hold"] * request["cost"]).quantize(CENT)
            await settle(conn, wallet, request_id, row["hold_id"], cost, **who)
        elif request["ending"] == "release":
            await fail(conn, wallet, request_id, row["hold_id"], **who)
        # "cut": the process is gone; the hold expires and leaves its failed row


ON_PATH = """
SELECT coalesce(sum(l.credits_used), 0)
  FROM llm_usage_log l, budgets b
 WHERE b.id = $1 AND l.user_id = b.workspace_id AND l.created_at >= $2
   AND ($3::timestamptz IS NULL OR l.created_at < $3)
   AND CASE b.scope_type WHEN 'workspace' THEN true WHEN 'project' THEN l.project_id::text = b.scope_id
                         WHEN 'key' THEN l.gateway_key_id::text = b.scope_id
                         WHEN 'end_user' THEN l.end_user = b.scope_id END
   AND (b.model_pattern IS NULL OR ledger_model_matches(l.model, b.model_pattern))
"""


async def check(conn: asyncpg.Connection, budget_ids: list[uuid.UUID], since: datetime) -> None:
    for budget_id in budget_ids:
        b = await conn.fetchrow("SELECT * FROM budgets WHERE id = $1", budget_id)
        held = await conn.fetchval(
            """SELECT coalesce(sum(amount), 0) FROM credit_holds
                WHERE status = 'held' AND $1::uuid = ANY (control_budgets)""",
            str(budget_id),
        )
        assert b["held"] == held, (b["held"], held)
        if b["hard"]:
            assert b["spent"] + b["held"] <= b["amount"], dict(b)
        start = max(b["period_start"], since)
        assert b["spent"] == await conn.fetchval(ON_PATH, budget_id, start, None), dict(b)
        for closed in await conn.fetch("SELECT * FROM budget_history WHERE budget_id = $1", budget_id):
            if closed["hard"]:
                assert closed["spent"] <= closed["amount"]
            begun = max(closed["period_start"], since)
            assert closed["spent"] == await conn.fetchval(ON_PATH, budget_id, begun, closed["period_end"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=starts, specs=budget_specs, rounds=st.lists(st.tuples(moves, request_mix), min_size=1, max_size=6))
def test_a_hard_budget_is_never_passed_and_its_spend_is_its_usage_rows(
    harness: Harness, start: datetime, specs: list[dict[str, Any]], rounds: list[tuple[Any, list[dict[str, Any]]]]
) -> None:
    async def run() -> None:
        harness.clock.set(start)
        pool = await asyncpg.create_pool(harness.url, min_size=2, max_size=8)
        try:
            async with pool.acquire() as conn:
                wallet = await make_wallet(conn)
                ids = await create_budgets(conn, wallet, specs)
                since = await conn.fetchval("SELECT now()")
            now = start
            for move, requests in rounds:
                now = next_midnight(now) - timedelta(milliseconds=100) if move == "boundary" else now + move
                harness.clock.set(now)
                await asyncio.gather(*(one_request(pool, wallet, request) for request in requests))
                if move == "boundary":  # the same mix again, just past the boundary
                    now += timedelta(milliseconds=200)
                    harness.clock.set(now)
                    await asyncio.gather(*(one_request(pool, wallet, request) for request in requests))
                async with pool.acquire() as conn:
                    await check(conn, ids, since)
            # past every hold's expiry: whatever was cut off is given back
            harness.clock.set(now + TTL + timedelta(seconds=1))
            async with pool.acquire() as conn:
                await conn.execute("SELECT expire_credit_holds(100)")
                if await conn.fetchval("SELECT count(*) FROM budget_history WHERE budget_id = ANY($1)", ids):
                    event("a period closed")
                await conn.execute("SELECT roll_budget_periods()")
                await check(conn, ids, since)
                assert await conn.fetchval("SELECT sum(held) FROM budgets WHERE id = ANY($1)", ids) == 0
        finally:
            await pool.close()

    asyncio.run(run())

"""Background maintenance: expired holds returned, due billing cycles started, one replica at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.money.credits import debit_user_credits
from ledger.money.holds import reserve_credits
from ledger.money.maintenance import LOCK_KEY, MaintenanceRun, run_forever, run_once


async def test_a_run_returns_expired_holds_and_starts_due_cycles(pool, make_user):
    spender = await make_user(credits="10")
    await reserve_credits(pool, spender, "9", "req_stuck", ttl=timedelta(milliseconds=10))
    in_flight = await make_user(credits="1")
    await reserve_credits(pool, in_flight, "0.5", "req_live")
    subscriber = await make_user(monthly_allowance=50)
    await debit_user_credits(pool, subscriber, 30, "usage", "req_used")
    await pool.execute(
        "UPDATE user_credits SET billing_cycle_start = now() - interval '35 days' WHERE user_id = $1", subscriber
    )
    await asyncio.sleep(0.05)

    run = await run_once(pool)

    assert (run.ran, run.holds_expired, run.cycles_rolled) == (True, 1, 1)
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", spender) == 0
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", in_flight) == Decimal(
        "0.5"
    ), "a hold still in time stays"
    row = await pool.fetchrow("SELECT * FROM user_credits WHERE user_id = $1", subscriber)
    assert row["credits_used_this_month"] == 0
    assert row["billing_cycle_start"] > await pool.fetchval("SELECT now() - interval '6 days'")
    assert await run_once(pool) == MaintenanceRun(True, 0, 0), "nothing left to do"
    assert [dict(r) for r in await pool.fetch("SELECT * FROM ledger_reconciliation")] == []


async def test_only_one_replica_runs_at_a_time(pool):
    async with pool.acquire() as other, other.transaction():
        await other.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)

        skipped = await run_once(pool)

    assert not skipped.ran
    assert (await run_once(pool)).ran


async def test_an_interrupted_run_loses_nothing(pool, make_user):
    user = await make_user(credits="10")
    await reserve_credits(pool, user, 10, "req_stuck", ttl=timedelta(milliseconds=10))
    await asyncio.sleep(0.05)

    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.fetchval("SELECT expire_credit_holds(1000)")
                raise RuntimeError("the process died mid-run")

    assert await pool.fetchval("SELECT status FROM credit_holds WHERE request_id = 'req_stuck'") == "held"
    assert (await run_once(pool)).holds_expired == 1
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", user) == 0


async def test_the_background_loop_keeps_running(pool, make_user):
    user = await make_user(credits="10")
    task = asyncio.create_task(run_forever(pool, 0.05))
    try:
        await reserve_credits(pool, user, 10, "req_stuck", ttl=timedelta(milliseconds=10))
        for _ in range(100):
            if await pool.fetchval("SELECT status FROM credit_holds WHERE request_id = 'req_stuck'") == "expired":
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE request_id = 'req_stuck'") == "expired"


async def test_the_loop_survives_its_backend_being_killed_mid_run(pool, make_user, caplog):
    """A terminated backend (an operator's pg_terminate_backend, a failover) fails that run only."""
    user = await make_user(credits="10")
    await reserve_credits(pool, user, 10, "req_stuck", ttl=timedelta(milliseconds=10))
    await asyncio.sleep(0.05)
    locker = await pool.acquire()
    blocking = locker.transaction()
    await blocking.start()
    await locker.execute("SELECT 1 FROM user_credits WHERE user_id = $1 FOR UPDATE", user)
    task = asyncio.create_task(run_forever(pool, 0.05))
    try:
        victim = None
        for _ in range(200):  # the run waits on the user's row lock: mid-run
            victim = await pool.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if victim is not None:
                break
            await asyncio.sleep(0.02)
        assert victim is not None
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", victim)
        await asyncio.sleep(0.2)
        await blocking.rollback()
        await pool.release(locker)
        for _ in range(200):
            if await pool.fetchval("SELECT status FROM credit_holds WHERE request_id = 'req_stuck'") == "expired":
                break
            await asyncio.sleep(0.05)
        assert not task.done(), "the loop ended"
    finally:
        task.cancel()
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE request_id = 'req_stuck'") == "expired"
    assert "maintenance run failed" in caplog.text


async def test_the_loop_survives_any_exception(pool, make_user, caplog, monkeypatch):
    """Not only database errors: whatever a run raises is logged and the next turn runs."""
    import ledger.money.maintenance

    calls = 0
    real = ledger.money.maintenance.expire_credit_holds

    async def flaky(conn, batch):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return await real(conn, batch)

    monkeypatch.setattr(ledger.money.maintenance, "expire_credit_holds", flaky)
    task = asyncio.create_task(run_forever(pool, 0.01))
    try:
        for _ in range(300):
            if calls >= 2:
                break
            await asyncio.sleep(0.01)
        assert not task.done(), "the loop ended"
    finally:
        task.cancel()
    assert calls >= 2
    assert "maintenance run failed" in caplog.text and "boom" in caplog.text

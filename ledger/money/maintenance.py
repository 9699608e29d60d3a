"""Background maintenance: return expired holds' credits, start billing cycles that are due, close
budget periods that have ended, expire grants past their expiry and tell of those expiring soon.

Safe with several replicas: a run takes a transaction-scoped advisory lock and a replica that
cannot get it skips its turn. Each run is one transaction, so an interrupted run rolls back whole
and the next one does the work; the SQL functions lock users in user_id order like every writer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import asyncpg

from ledger.db.background import log_failed_pass
from ledger.money import grants
from ledger.money.holds import expire_credit_holds

log = logging.getLogger("ledger.maintenance")

LOCK_KEY = int.from_bytes(hashlib.sha256(b"credit-ledger maintenance").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class MaintenanceRun:
    ran: bool  # False: another replica held the lock
    holds_expired: int = 0
    cycles_rolled: int = 0
    budget_periods_closed: int = 0
    grants_expired: int = 0
    expiring_told: int = 0
    top_ups_retried: int = 0
    alerts_opened: int = 0
    alerts_resolved: int = 0


async def run_once(pool: asyncpg.Pool, batch: int = 1000) -> MaintenanceRun:
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return MaintenanceRun(ran=False)
        expired = await expire_credit_holds(conn, batch)
        rolled = await conn.fetchval("SELECT roll_billing_cycles($1)", batch)
        # a budget period no request touched since its end still leaves its history row now
        closed = await conn.fetchval("SELECT roll_budget_periods()")
        # grants past their expiry leave the balance (an expiry transaction each); those expiring
        # soon are told once (credits.expiring)
        grants_expired = await grants.expire_grants(conn, batch)
        told = await grants.tell_expiring(conn)
        # auto top-ups whose back-off after a failure ended, for wallets still below their threshold
        retried = await conn.fetchval("SELECT retry_auto_top_ups()")
        # alert rules: open what breaks its rule, resolve what no longer does
        alerts = await conn.fetchrow("SELECT * FROM evaluate_alert_rules()")  # one row, always
        assert alerts is not None
    if expired or rolled or closed or grants_expired:
        log.info(
            "maintenance: %d holds expired, %d billing cycles started, %d budget periods closed, %d grants expired",
            expired,
            rolled,
            closed,
            grants_expired,
        )
    return MaintenanceRun(
        True, expired, rolled, closed, grants_expired, told, retried, alerts["opened"], alerts["resolved"]
    )


async def run_forever(pool: asyncpg.Pool, interval_seconds: float) -> None:
    """Run every interval until cancelled; a failed run is logged and retried at the next turn."""
    while True:
        try:
            await run_once(pool)
        except Exception:
            # whatever failed (a killed backend is an InterfaceError, not a PostgresError), the task
            # must outlive it: the run rolled back whole and the next turn does the work
            log_failed_pass(log, "maintenance run", interval_seconds)
        await asyncio.sleep(interval_seconds)

"""The metered request's SQL calls: reserve, settle-and-log on success, release-and-log on failure.

A settle or release that loses its database connection (an outage, a restarted server) is retried
in the background until it lands, for a bounded time; both are idempotent per hold. If the process
dies first, the hold expires and its expiry writes the request's usage row (reserve_llm_request
stored it on the hold).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal

import asyncpg

from ledger.db.executor import Executor
from ledger.errors import translate_errors
from ledger.money.holds import Reservation
from ledger.money.values import to_credits

log = logging.getLogger("ledger.metering")

# What a lost or refused database connection raises (not a SQL error: the statement may not have run).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
_pending: set[asyncio.Task[None]] = set()


@dataclass(slots=True)
class UsageRecord:
    """One llm_usage_log row, as the service knows it."""

    request_id: str
    user_id: uuid.UUID
    gateway_key_id: uuid.UUID | None
    model: str
    power_level: str
    provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    cost_multiplier: Decimal | None = None
    latency_ms: int | None = None
    status_code: int | None = None
    error_message: str | None = None
    is_byok: bool = False
    success: bool = True
    usage_anomaly: str | None = None
    reported_usage: str | None = None

    def to_json(self) -> str:
        # Decimals and UUIDs travel as strings; PostgreSQL reads them back exactly.
        return json.dumps(asdict(self), default=str)


@dataclass(frozen=True, slots=True)
class Charge:
    charged: Decimal
    shortfall: Decimal
    new_balance: Decimal
    # What the user can still spend (allowance left + balance - holds); None = unlimited.
    available: Decimal | None
    transaction_id: int | None
    # The settle has not reached the database yet (it is retried in the background).
    pending: bool = False


async def reserve_request(
    db: Executor, user_id: uuid.UUID, amount: Decimal, ttl: timedelta, description: str, usage: UsageRecord
) -> Reservation:
    """reserve_credits, with the usage row the hold leaves if the request is never settled."""
    failed = UsageRecord(**{**asdict(usage), "success": False})
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM reserve_llm_request($1, $2, $3, $4, $5, $6::jsonb)",
            user_id,
            to_credits(amount),
            usage.request_id,
            ttl,
            description,
            failed.to_json(),
        )
    return Reservation(row["success"], row["hold_id"], row["available"])


async def extend_hold(db: Executor, hold_id: uuid.UUID, ttl: timedelta) -> bool:
    return bool(await db.fetchval("SELECT extend_credit_hold($1, $2)", hold_id, ttl))


def retry_in_background(what: str, write: Callable[[], Awaitable[object]], *, give_up_after: float) -> None:
    """Retries `write` (idempotent) until it lands, backing off to 30 s between tries, for at most
    `give_up_after` seconds; every failure is logged, and giving up is logged as an error."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + give_up_after
        delay = 0.25
        while True:
            await asyncio.sleep(delay)
            try:
                await write()
            except CONNECTION_ERRORS as exc:
                if loop.time() + delay > deadline:
                    log.error(
                        "%s: gave up after %.0f s (%s); the hold's expiry writes its usage row",
                        what,
                        give_up_after,
                        type(exc).__name__,
                    )
                    return
                log.warning("%s: database still unreachable (%s); retrying", what, type(exc).__name__)
                delay = min(delay * 2, 30.0)
            except Exception:
                log.exception("%s failed for good; the hold's expiry writes its usage row", what)
                return
            else:
                log.info("%s: completed after the database came back", what)
                return

    task = asyncio.get_running_loop().create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def wait_for_background_writes() -> None:
    """For a clean shutdown (and tests): waits for the writes being retried."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _pending if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)


async def settle_request(db: Executor, hold_id: uuid.UUID | None, credits: Decimal, usage: UsageRecord) -> Charge:
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM settle_llm_request($1, $2, $3::jsonb)",
            hold_id,
            to_credits(credits, allow_zero=True),
            usage.to_json(),
        )
    return Charge(row["charged"], row["shortfall"], row["new_balance"], row["available"], row["transaction_id"])


async def fail_request(db: Executor, hold_id: uuid.UUID | None, usage: UsageRecord) -> Decimal:
    """Release the hold and log the failure; returns the credits released."""
    with translate_errors():
        return await db.fetchval("SELECT fail_llm_request($1, $2::jsonb)", hold_id, usage.to_json())

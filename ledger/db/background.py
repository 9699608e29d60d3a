"""Writes that must land even through a database outage: retried in the background.

A settle or release that loses its database connection (an outage, a restarted server) is retried
until it lands, for a bounded time; the writes given here are idempotent. If the process dies
first, a metered hold expires and its expiry writes the request's usage row.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("ledger.metering")

# What a lost or refused database connection raises (not a SQL error: the statement may not have run).
# In a failover (docs/high-availability.md) also: asyncpg's InternalClientError, raised for a
# pooled connection whose dying server sent it a FATAL while it was idle ("cannot switch to state
# N; another operation (2) is in progress"), and its subclass TargetServerAttributeNotMatched, when
# no host of a multi-host URL is read-write yet.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
)
_pending: set[asyncio.Task[None]] = set()


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


def log_failed_pass(logger: logging.Logger, what: str, interval_seconds: float) -> None:
    """Logs a background pass that failed (call it in an `except` block): a database outage (a
    failover, a restart) as one warning line, anything else with its traceback, as a bug."""
    exc = sys.exc_info()[1]
    if isinstance(exc, CONNECTION_ERRORS):
        name = type(exc).__name__
        logger.warning("%s failed: database unavailable (%s); retrying in %s s", what, name, interval_seconds)
    else:
        logger.exception("%s failed; retrying in %s s", what, interval_seconds)

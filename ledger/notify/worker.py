"""The notification worker: delivers due webhook messages and emails every interval, in every
replica (claims skip what another holds, so replicas share the work and never send one twice at
once). Started by the service's lifespan when LEDGER_NOTIFY_INTERVAL_SECONDS > 0."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx

from ledger.accounts.mail import Mailer
from ledger.accounts.people import SecretBox
from ledger.notify.delivery import DeliveryPolicy, deliver_due
from ledger.notify.emails import send_due

log = logging.getLogger("ledger.notify")


async def run_once(
    pool: asyncpg.Pool, box: SecretBox, mailer: Mailer, client: httpx.AsyncClient, policy: DeliveryPolicy
) -> int:
    """One pass of both; the number of webhook attempts and emails tried."""
    return await deliver_due(pool, box, client, policy) + await send_due(pool, mailer)


async def run_forever(
    pool: asyncpg.Pool, box: SecretBox, mailer: Mailer, policy: DeliveryPolicy, interval_seconds: float
) -> None:
    """Until cancelled. A pass that found work is followed at once by another; a failed pass is
    logged and the next turn tries again (claims are leased: nothing is lost)."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while True:
            try:
                busy = await run_once(pool, box, mailer, client, policy)
            except Exception:
                log.exception("notification pass failed; retrying in %s s", interval_seconds)
                busy = 0
            if not busy:
                await asyncio.sleep(interval_seconds)

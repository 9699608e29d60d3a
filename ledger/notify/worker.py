"""The notification worker: delivers due webhook messages, emails and alert channel messages every interval, in every
replica (claims skip what another holds, so replicas share the work and never send one twice at
once). Started by the service's lifespan when LEDGER_NOTIFY_INTERVAL_SECONDS > 0."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx

from ledger.accounts.mail import Mailer
from ledger.accounts.people import SecretBox
from ledger.db.background import log_failed_pass
from ledger.notify import channel_delivery
from ledger.notify.channel_delivery import ChannelPolicy
from ledger.notify.delivery import DeliveryPolicy, deliver_due
from ledger.notify.emails import send_due

log = logging.getLogger("ledger.notify")


async def run_once(
    pool: asyncpg.Pool,
    box: SecretBox,
    mailer: Mailer,
    client: httpx.AsyncClient,
    policy: DeliveryPolicy,
    channels: ChannelPolicy | None = None,
) -> int:
    """One pass of each: webhook attempts, emails, channel messages; how many were tried."""
    channels = channels or ChannelPolicy(policy.allow_private)
    return (
        await deliver_due(pool, box, client, policy)
        + await send_due(pool, mailer)
        + await channel_delivery.send_due(pool, box, mailer, client, channels)
    )


async def run_forever(
    pool: asyncpg.Pool,
    box: SecretBox,
    mailer: Mailer,
    policy: DeliveryPolicy,
    interval_seconds: float,
    channels: ChannelPolicy | None = None,
) -> None:
    """Until cancelled. A pass that found work is followed at once by another; a failed pass is
    logged and the next turn tries again (claims are leased: nothing is lost)."""
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while True:
            try:
                busy = await run_once(pool, box, mailer, client, policy, channels)
            except Exception:
                log_failed_pass(log, "notification pass", interval_seconds)
                busy = 0
            if not busy:
                await asyncio.sleep(interval_seconds)

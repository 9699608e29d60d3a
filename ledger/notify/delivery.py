"""Delivering webhook messages: claim the due ones (leased, so a dead process's claim runs out
and the message is tried again: at least once), sign, post, and record each attempt with what
follows from it (delivered; due again by the schedule; failed; the endpoint disabled) in one SQL
call, ledger_webhook_attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from ledger.accounts.people import SecretBox
from ledger.db.queries import query
from ledger.errors import LedgerError
from ledger.notify.events import event_body, message_id
from ledger.notify.schedule import GIVE_UP_AFTER, next_attempt_at
from ledger.notify.signing import signed_headers
from ledger.notify.targets import Pinned, pinned, refuse_private
from ledger.notify.webhooks import SECRET_PURPOSE
from ledger.settings import Settings

log = logging.getLogger("ledger.notify")
RESPONSE_KEPT = 2000  # characters of a receiver's answer kept in the log
LEASE_MARGIN_SECONDS = 30
USER_AGENT = "credit-ledger-webhooks/1"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    allow_private: bool = False
    disable_after_failures: int = 10
    disable_after_seconds: float = 86400.0


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        settings.webhook_allow_private_targets,
        settings.webhook_disable_after_failures,
        settings.webhook_disable_after_seconds,
    )


class _NoCipher:
    """Without LEDGER_ENCRYPTION_KEY no secret opens: an attempt is logged as not sent."""

    def encrypt(self, plaintext: str, user_id: uuid.UUID, provider: str) -> bytes:
        raise ValueError("no LEDGER_ENCRYPTION_KEY is set: webhook secrets cannot be stored")

    def decrypt(self, blob: bytes, user_id: uuid.UUID, provider: str) -> str:
        raise ValueError("no LEDGER_ENCRYPTION_KEY is set: the webhook's secret cannot be read")


NO_CIPHER: SecretBox = _NoCipher()


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    error: str | None
    latency_ms: int

    @property
    def success(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _secrets(row: asyncpg.Record, box: SecretBox) -> list[str]:
    webhook_id: uuid.UUID = row["webhook_id"]
    found = [box.decrypt(bytes(row["secret_encrypted"]), webhook_id, SECRET_PURPOSE)]
    if row["previous_signs"] and row["previous_secret_encrypted"] is not None:
        found.append(box.decrypt(bytes(row["previous_secret_encrypted"]), webhook_id, SECRET_PURPOSE))
    return found


async def _post(
    client: httpx.AsyncClient, target: Pinned, headers: dict[str, str], body: bytes, wait_s: float
) -> Outcome:
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        async with client.stream(
            "POST",
            target.url,
            content=body,
            headers=headers | target.headers,
            timeout=wait_s,
            extensions=target.extensions,
        ) as response:
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_KEPT * 4:
                    break
            text = kept.decode("utf-8", "replace").replace("\x00", "\ufffd")[:RESPONSE_KEPT]
            answered = {k: v.replace("\x00", "") for k, v in list(response.headers.items())[:50]}
            error = None if 200 <= response.status_code < 300 else f"the endpoint answered {response.status_code}"
            return Outcome(response.status_code, answered, text, error, took())
    except httpx.TimeoutException:
        return Outcome(None, None, None, f"no answer within {wait_s:g} s", took())
    except httpx.HTTPError as exc:
        return Outcome(None, None, None, f"could not post: {type(exc).__name__}: {str(exc)[:200]}", took())
    except Exception as exc:  # whatever else the client raises is this attempt's failure, not the pass's
        log.exception("webhook post to %s failed", target.url.split("?")[0][:200])
        return Outcome(None, None, None, f"could not post ({type(exc).__name__})", took())


async def deliver_due(
    pool: asyncpg.Pool, box: SecretBox, client: httpx.AsyncClient, policy: DeliveryPolicy, batch: int = 50
) -> int:
    """One pass: every due message (at most `batch`) gets one attempt, concurrently. Returns how
    many were attempted."""
    rows = await pool.fetch(query("claim_webhook_messages"), batch, 30 + LEASE_MARGIN_SECONDS)
    if rows:
        await asyncio.gather(*(attempt(pool, box, client, policy, row) for row in rows))
    return len(rows)


async def attempt(
    pool: asyncpg.Pool, box: SecretBox, client: httpx.AsyncClient, policy: DeliveryPolicy, row: asyncpg.Record
) -> str:
    event_id = str(row["event_id"])
    data: dict[str, Any] = json.loads(row["data"])
    body = event_body(event_id, row["event_type"], data, row["event_at"])
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if datetime.now(UTC) - row["queued_at"] > GIVE_UP_AFTER:  # waited out a disablement: too old to send
        outcome = Outcome(None, None, None, "not sent: queued more than three days ago", 0)
    else:
        try:
            headers |= signed_headers(message_id(event_id), datetime.now(UTC), body, _secrets(row, box))
            target = pinned(row["url"], await refuse_private(row["url"], policy.allow_private))
        except (LedgerError, ValueError) as exc:  # a private target; a secret no configured key opens
            outcome = Outcome(None, None, None, f"not sent: {exc}", 0)
        else:
            outcome = await _post(client, target, headers, body, row["timeout_ms"] / 1000)
    # None past the schedule or three days after queueing: the message is failed for good
    next_at = None if outcome.success else next_attempt_at(row["attempt"], datetime.now(UTC), row["queued_at"])
    result: str = await pool.fetchval(
        "SELECT ledger_webhook_attempt($1, $2, $3::jsonb, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13)",
        row["message_id"],
        row["attempt"],
        json.dumps(headers),
        body.decode(),
        outcome.status,
        None if outcome.headers is None else json.dumps(outcome.headers),
        outcome.body,
        outcome.latency_ms,
        outcome.success,
        outcome.error,
        next_at,
        policy.disable_after_failures,
        policy.disable_after_seconds,
    )
    if not outcome.success:
        log.warning(
            "webhook %s: attempt %d of event %s (%s) failed: %s; %s",
            row["webhook_id"],
            row["attempt"],
            event_id,
            row["event_type"],
            outcome.error,
            result,
        )
    return result

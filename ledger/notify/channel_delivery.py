"""Sending what channels are owed (alert_notifications rows): each in its service's shape
(channel_messages.py), at least once, retried on a short schedule, every outcome counted on the
channel (seed 004's failure counts) and on the alert event."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from ledger.accounts.mail import Mailer, MailNotSent
from ledger.accounts.people import SecretBox
from ledger.db.queries import query
from ledger.errors import LedgerError
from ledger.notify import channel_messages as shapes
from ledger.notify.channels import open_code, open_config
from ledger.notify.signing import signed_headers
from ledger.notify.targets import Pinned, pinned, refuse_private

log = logging.getLogger("ledger.notify")
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
LEASE_SECONDS = 90
TIMEOUT_SECONDS = 10.0
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    allow_private: bool = False
    pagerduty_url: str = PAGERDUTY_EVENTS_URL


async def _post(client: httpx.AsyncClient, target: Pinned, body: bytes, headers: dict[str, str]) -> None:
    """Raises with what went wrong unless the service answered 2xx."""
    response = await client.post(
        target.url,
        content=body,
        headers={"content-type": "application/json", **headers, **target.headers},
        timeout=TIMEOUT_SECONDS,
        extensions=target.extensions,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"answered {response.status_code}: {response.text[:200]}")


async def _send(
    row: asyncpg.Record, box: SecretBox, mailer: Mailer, client: httpx.AsyncClient, policy: ChannelPolicy
) -> None:
    blob = row["verification_code_encrypted"]
    code = None if blob is None else open_code(box, bytes(blob), row["channel_id"])
    note = shapes.note_of(row, code)
    config = open_config(box, row)
    kind = row["channel_type"]
    if kind == "email":
        subject, text = shapes.email(note)
        await mailer.send(config["email"], subject, text)
        return
    if kind == "pagerduty":
        events = [shapes.pagerduty(note, config["routing_key"])]
        if note.action == "verify":  # a test incident is opened and closed at once
            events.append(shapes.pagerduty(note, config["routing_key"], "resolve"))
        for event in events:
            await _post(client, Pinned(policy.pagerduty_url, {}, {}), json.dumps(event).encode(), {})
        return
    url = config["url"]
    # again at each send, and to the address checked: a name may point elsewhere now
    target = pinned(url, await refuse_private(url, policy.allow_private))
    if kind == "webhook":
        body = shapes.webhook_body(note)
        headers = signed_headers("msg_" + note.dedup_key.replace("-", "_"), datetime.now(UTC), body, [config["secret"]])
        await _post(client, target, body, headers)
        return
    shape = {"slack": shapes.slack, "discord": shapes.discord, "teams": shapes.teams}[kind]
    await _post(client, target, json.dumps(shape(note)).encode(), {})


async def send_due(
    pool: asyncpg.Pool, box: SecretBox, mailer: Mailer, client: httpx.AsyncClient, policy: ChannelPolicy,
    batch: int = 50,
) -> int:  # fmt: skip
    rows = await pool.fetch(query("claim_alert_notifications"), batch, LEASE_SECONDS)
    for row in rows:
        error = None
        if not row["is_active"]:
            error = "the channel is turned off"
        else:
            try:
                await _send(row, box, mailer, client, policy)
            except (httpx.HTTPError, MailNotSent, LedgerError, ValueError, RuntimeError, KeyError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            except Exception as exc:  # one message's surprise never stops the pass for the others
                log.exception("channel %s: sending %s failed", row["channel_id"], row["action"])
                error = f"could not be sent ({type(exc).__name__})"
        tries: int = row["attempts"]
        again = None
        if error is not None and tries <= len(RETRY_DELAYS) and row["is_active"]:
            again = datetime.now(UTC) + RETRY_DELAYS[tries - 1]
        if error is not None:
            log.warning(
                "channel %s (%s): %s not sent: %s", row["channel_id"], row["channel_type"], row["action"], error
            )
        await pool.execute(
            "SELECT ledger_alert_notification_done($1, $2, $3, $4)", row["id"], error is None, error, again
        )
    return len(rows)

"""Webhooks: a workspace's signed endpoints (migration 0022). Changes run in the caller's `acting`
transaction: audited. The signing secret is shown once, at creation and at each rotation, and
stored encrypted under LEDGER_ENCRYPTION_KEY, bound to the webhook's id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

import asyncpg

from ledger.accounts import audit
from ledger.accounts.people import SecretBox
from ledger.accounts.secret_rotation import RingBox, SecretRotation
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidWebhook, TooManyControls, TooManyTests, translate_errors
from ledger.notify.events import EVENT_TYPES, EVERY_EVENT
from ledger.notify.signing import new_secret
from ledger.notify.targets import checked_url, refuse_private

# What the secret's ciphertext is bound to, beside the webhook's id
SECRET_PURPOSE = "webhook"  # noqa: S105 (a label the ciphertext is bound to)
MOST_WEBHOOKS = 20
MOST_OVERLAP = timedelta(days=7)
MOST_TESTS_AN_HOUR = 10  # an endpoint's owner tests it; nobody floods a URL through it
MOST_REPLAYS = 5


class Webhook(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str | None
    url: str
    events: list[str]
    filter_project_ids: list[uuid.UUID] | None
    timeout_ms: int
    is_active: bool
    last_triggered_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_failure_at: datetime | None
    last_failure_reason: str | None
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class Delivery(TypedDict):
    id: int
    webhook_id: uuid.UUID
    message_id: int
    event_id: uuid.UUID
    event_type: str
    attempt_number: int
    request_headers: str
    request_body: str
    response_status: int | None
    response_headers: str | None
    response_body: str | None
    latency_ms: int | None
    success: bool
    error_message: str | None
    next_retry_at: datetime | None
    created_at: datetime


def _webhook(row: object) -> Webhook:
    return cast(Webhook, dict(cast(asyncpg.Record, row)))


def events_of(values: Sequence[str]) -> list[str]:
    """The subscribed types: known names, or '*' for all (request.completed only by name)."""
    chosen = sorted(set(values))
    unknown = [v for v in chosen if v != EVERY_EVENT and v not in EVENT_TYPES]
    if not chosen or unknown:
        raise InvalidWebhook(
            f"events must name at least one of {', '.join(EVENT_TYPES)}, or '*' for all"
            + (f"; unknown: {', '.join(repr(u[:60]) for u in unknown[:5])}." if unknown else "."),
            param="events",
        )
    return chosen


def name_of(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 100 or any(not c.isprintable() for c in name):
        raise InvalidWebhook("name must be 1 to 100 printable characters.", param="name")
    return name


async def projects_of_workspace(db: Executor, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID] | None) -> None:
    """InvalidWebhook unless every project id is one of the workspace's (else the filter would
    silently never match)."""
    if ids is None:
        return
    wanted = list(dict.fromkeys(ids))
    if await db.fetchval(query("count_projects_among"), workspace_id, wanted) != len(wanted):
        raise InvalidWebhook("project_ids must be projects of this organization.", param="project_ids")


def timeout_of(value: int | None) -> int | None:
    if value is not None and not 1000 <= value <= 30000:
        raise InvalidWebhook("timeout_ms must be from 1000 to 30000.", param="timeout_ms")
    return value


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    name: str
    url: str
    events: Sequence[str]
    description: str | None = None
    project_ids: Sequence[uuid.UUID] | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Created:
    webhook: Webhook
    secret: str  # shown once


async def create_webhook(
    db: Executor,
    box: SecretBox,
    workspace_id: uuid.UUID,
    spec: WebhookSpec,
    created_by: uuid.UUID | None,
    *,
    allow_private: bool,
) -> Created:
    url = checked_url(spec.url)
    await refuse_private(url, allow_private)
    await projects_of_workspace(db, workspace_id, spec.project_ids)
    await db.fetchval(query("lock_workspace"), workspace_id)  # the count and the insert as one step
    if await db.fetchval(query("count_webhooks_of_workspace"), workspace_id) >= MOST_WEBHOOKS:
        raise TooManyControls(f"A workspace has at most {MOST_WEBHOOKS} webhooks: delete one first.")
    webhook_id = uuid.uuid4()
    secret = new_secret()
    with translate_errors():
        await db.fetchval(
            query("insert_webhook"),
            workspace_id,
            webhook_id,
            name_of(spec.name),
            spec.description,
            url,
            box.encrypt(secret, webhook_id, SECRET_PURPOSE),
            events_of(spec.events),
            None if spec.project_ids is None else list(spec.project_ids),
            timeout_of(spec.timeout_ms) or 10000,
            created_by,
        )
    return Created(cast(Webhook, await webhook(db, workspace_id, webhook_id)), secret)


async def webhooks_of(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[Webhook]:
    return [_webhook(row) for row in await db.fetch(query("webhooks_of_workspace"), workspace_id, after, limit)]


async def webhook(db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook | None:
    row = await db.fetchrow(query("webhook_of_workspace"), workspace_id, webhook_id)
    return None if row is None else _webhook(row)


@dataclass(frozen=True, slots=True)
class WebhookChange:
    name: str | None = None
    url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None
    project_ids: Sequence[uuid.UUID] | None = None
    all_projects: bool = False
    enabled: bool | None = None
    timeout_ms: int | None = None


async def modify_webhook(
    db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID, change: WebhookChange, *, allow_private: bool
) -> Webhook | None:
    url = None
    if change.url is not None:
        url = checked_url(change.url)
        await refuse_private(url, allow_private)
    await projects_of_workspace(db, workspace_id, change.project_ids)
    with translate_errors():
        changed = await db.fetchval(
            query("update_webhook"),
            workspace_id,
            webhook_id,
            None if change.name is None else name_of(change.name),
            change.description,
            url,
            None if change.events is None else events_of(change.events),
            None if change.project_ids is None else list(change.project_ids),
            change.all_projects,
            change.enabled,
            timeout_of(change.timeout_ms),
        )
    return None if changed is None else await webhook(db, workspace_id, changed)


async def delete_webhook(db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID) -> bool:
    return await db.fetchval(query("delete_webhook"), workspace_id, webhook_id) is not None


async def rotate_secret(
    db: Executor, box: SecretBox, workspace_id: uuid.UUID, webhook_id: uuid.UUID, overlap: timedelta
) -> str | None:
    """A new secret (returned, shown once); the current one keeps signing beside it for `overlap`
    (at most a week; zero ends it at once). None: no such webhook."""
    if not timedelta(0) <= overlap <= MOST_OVERLAP:
        raise InvalidWebhook("overlap_seconds must be from 0 to 604800 (a week).", param="overlap_seconds")
    secret = new_secret()
    until = datetime.now(UTC) + overlap
    done = await db.fetchval(
        query("rotate_webhook_secret"), workspace_id, webhook_id, box.encrypt(secret, webhook_id, SECRET_PURPOSE), until
    )
    return None if done is None else secret


async def send_test(
    db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID, by: uuid.UUID | None
) -> uuid.UUID | None:
    """Queues a webhook.test event to this endpoint only, whatever it subscribes to, audited. None:
    no such webhook, or it is off or disabled. TooManyControls past MOST_TESTS_AN_HOUR."""
    if await db.fetchval(query("count_recent_webhook_tests"), workspace_id, str(webhook_id)) >= MOST_TESTS_AN_HOUR:
        raise TooManyTests(f"At most {MOST_TESTS_AN_HOUR} test events an hour per webhook: try again later.")
    data: dict[str, Any] = {"webhook_id": str(webhook_id), "message": "A test event: your endpoint is reachable."}
    event = await db.fetchval(
        "SELECT ledger_emit($1, 'webhook.test', $2::jsonb, NULL, $3)", workspace_id, json.dumps(data), webhook_id
    )
    if event is not None:
        await audit.record(db, "webhook.test", "webhook", str(webhook_id), workspace_id=workspace_id, person_id=by)
    return cast("uuid.UUID | None", event)


async def deliveries_of(
    db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID, before: int | None, limit: int
) -> list[Delivery]:
    rows = await db.fetch(query("webhook_deliveries_of"), workspace_id, webhook_id, before, limit)
    return [cast(Delivery, dict(row)) for row in rows]


async def replay(
    db: Executor, workspace_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: int, by: uuid.UUID | None
) -> bool:
    """The message of that attempt is sent again now (one more attempt), audited; False: no such
    attempt, its message is waiting already, or it was replayed MOST_REPLAYS times."""
    again = await db.fetchval(query("replay_webhook_delivery"), workspace_id, webhook_id, delivery_id, MOST_REPLAYS)
    if again is not None:
        after = json.dumps({"delivery_id": delivery_id, "message_id": again})
        await audit.record(db, "webhook.replay", "webhook", str(webhook_id), workspace_id=workspace_id,
                           person_id=by, after=after)  # fmt: skip
    return again is not None


async def rotate_secret_encryption(pool: asyncpg.Pool, box: RingBox, batch: int = 500) -> SecretRotation:
    """`ledger byok rotate`: each webhook's secrets (current and previous) under an old
    LEDGER_ENCRYPTION_KEY are re-encrypted under the current one, once; a webhook whose secret was
    rotated meanwhile is left alone. A secret under no configured key is counted unreadable: its
    owners rotate the webhook's secret to get a new one."""
    rotated = current = unreadable = 0
    after = uuid.UUID(int=0)
    while rows := await pool.fetch(query("webhook_secrets_after"), after, batch):
        for row in rows:
            webhook_id: uuid.UUID = row["id"]
            blobs = [bytes(row["secret_encrypted"])]
            if row["previous_secret_encrypted"] is not None:
                blobs.append(bytes(row["previous_secret_encrypted"]))
            try:
                opened = [box.open(blob, webhook_id, SECRET_PURPOSE) for blob in blobs]
            except ValueError:
                unreadable += 1
                continue
            if all(under_current for _, under_current in opened):
                current += 1
                continue
            again = [box.encrypt(plain, webhook_id, SECRET_PURPOSE) for plain, _ in opened]
            replaced = await pool.fetchval(
                query("replace_webhook_secrets"),
                webhook_id,
                blobs[0],
                blobs[1] if len(blobs) > 1 else None,
                again[0],
                again[1] if len(again) > 1 else None,
            )
            rotated += replaced is not None
        after = rows[-1]["id"]
    return SecretRotation(rotated, current, unreadable)

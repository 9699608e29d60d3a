"""The administration API's webhooks, notification settings and (read-only) credit grants, in
OpenAI's list and error shapes. Every member's admin key may read (never a secret: it is shown once, at creation and at
rotation); changing needs MANAGE_NOTIFICATIONS (owners and admins). Every change runs in
`acting`: audited."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.organization_auth import organization_caller
from api.params import parse_body
from api.routes.organization import cursor, limit_of, listed, not_found, path_id, unix
from api.services import services
from ledger.accounts.actor import acting
from ledger.accounts.people import SecretBox
from ledger.accounts.roles import Permission
from ledger.money import grants
from ledger.notify import contacts, webhooks
from ledger.notify.webhooks import WebhookChange, WebhookSpec

P = Permission


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=1000)
    project_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    timeout_ms: int | None = None


class ChangedWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=1000)
    project_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    all_projects: bool = False
    enabled: bool | None = None
    timeout_ms: int | None = None


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(default=86400, ge=0, le=7 * 86400)


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low_balance_threshold: str | None = Field(default=None, max_length=40)
    billing_contacts: list[uuid.UUID] | None = Field(default=None, max_length=100)


def webhook_object(row: webhooks.Webhook, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "object": "organization.webhook",
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "url": row["url"],
        "events": row["events"],
        "project_ids": None if row["filter_project_ids"] is None else [str(p) for p in row["filter_project_ids"]],
        "timeout_ms": row["timeout_ms"],
        "enabled": row["is_active"] and row["disabled_at"] is None,
        "is_active": row["is_active"],
        "disabled_at": unix(row["disabled_at"]),
        "disabled_reason": row["disabled_reason"],
        "consecutive_failures": row["consecutive_failures"],
        "last_failure_at": unix(row["last_failure_at"]),
        "last_failure_reason": row["last_failure_reason"],
        "last_triggered_at": unix(row["last_triggered_at"]),
        "previous_secret_expires_at": unix(row["previous_secret_expires_at"]),
        "created_at": unix(row["created_at"]),
    }
    if secret is not None:
        shown["secret"] = secret
    return shown


def delivery_object(row: webhooks.Delivery) -> dict[str, Any]:
    return {
        "object": "organization.webhook.delivery",
        "id": str(row["id"]),
        "webhook_id": str(row["webhook_id"]),
        "message_id": str(row["message_id"]),
        "event_id": str(row["event_id"]),
        "event_type": row["event_type"],
        "attempt": row["attempt_number"],
        "request_headers": json.loads(row["request_headers"]),
        "request_body": row["request_body"],
        "response_status": row["response_status"],
        "response_headers": None if row["response_headers"] is None else json.loads(row["response_headers"]),
        "response_body": row["response_body"],
        "latency_ms": row["latency_ms"],
        "success": row["success"],
        "error": row["error_message"],
        "next_retry_at": unix(row["next_retry_at"]),
        "created_at": unix(row["created_at"]),
    }


def cipher_of(request: Request) -> SecretBox:
    cipher = services(request).cipher
    if cipher is None:
        raise ApiError(
            503,
            "Webhooks are off on this service: their signing secrets are stored encrypted, and the operator "
            "has not set LEDGER_ENCRYPTION_KEY.",
            type="service_unavailable",
            code="webhooks_disabled",
        )
    return cipher


def allow_private(request: Request) -> bool:
    return services(request).settings.webhook_allow_private_targets


async def list_webhooks(request: Request) -> Response:
    caller = await organization_caller(request)
    limit = limit_of(request)
    rows = await webhooks.webhooks_of(services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1)
    return LedgerJSONResponse(listed([webhook_object(r) for r in rows[:limit]], len(rows) > limit))


async def create_webhook(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    new = await parse_body(request, NewWebhook)
    box = cipher_of(request)
    spec = WebhookSpec(new.name, new.url, new.events, new.description, new.project_ids, new.timeout_ms)
    async with acting(services(request).pool, caller.actor) as conn:
        made = await webhooks.create_webhook(
            conn, box, caller.workspace_id, spec, caller.actor.person, allow_private=allow_private(request)
        )
    return LedgerJSONResponse(webhook_object(made.webhook, made.secret), status_code=201)


async def _webhook(request: Request, workspace_id: uuid.UUID) -> webhooks.Webhook:
    row = await webhooks.webhook(services(request).pool, workspace_id, path_id(request, "webhook_id", "webhook"))
    if row is None:
        raise not_found("webhook")
    return row


async def get_webhook(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(webhook_object(await _webhook(request, caller.workspace_id)))


async def modify_webhook(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    body = await parse_body(request, ChangedWebhook)
    found = await _webhook(request, caller.workspace_id)
    change = WebhookChange(
        body.name,
        body.url,
        body.events,
        body.description,
        body.project_ids,
        body.all_projects,
        body.enabled,
        body.timeout_ms,
    )
    async with acting(services(request).pool, caller.actor) as conn:
        row = await webhooks.modify_webhook(
            conn, caller.workspace_id, found["id"], change, allow_private=allow_private(request)
        )
    if row is None:
        raise not_found("webhook")
    return LedgerJSONResponse(webhook_object(row))


async def delete_webhook(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    webhook_id = path_id(request, "webhook_id", "webhook")
    async with acting(services(request).pool, caller.actor) as conn:
        if not await webhooks.delete_webhook(conn, caller.workspace_id, webhook_id):
            raise not_found("webhook")
    return LedgerJSONResponse({"object": "organization.webhook.deleted", "id": str(webhook_id), "deleted": True})


async def rotate_secret(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    rotation = await parse_body(request, Rotation)
    box = cipher_of(request)
    found = await _webhook(request, caller.workspace_id)
    async with acting(services(request).pool, caller.actor) as conn:
        secret = await webhooks.rotate_secret(
            conn, box, caller.workspace_id, found["id"], timedelta(seconds=rotation.overlap_seconds)
        )
        row = await webhooks.webhook(conn, caller.workspace_id, found["id"])
    if secret is None or row is None:
        raise not_found("webhook")
    return LedgerJSONResponse(webhook_object(row, secret))


async def send_test(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    found = await _webhook(request, caller.workspace_id)
    async with acting(services(request).pool, caller.actor) as conn:
        event = await webhooks.send_test(conn, caller.workspace_id, found["id"], caller.actor.person)
    if event is None:
        raise ApiError(409, "This webhook is off or disabled: enable it first.", code="webhook_disabled")
    return LedgerJSONResponse({"object": "organization.webhook.test", "event_id": str(event)}, status_code=202)


def _delivery_cursor(request: Request) -> int | None:
    value = request.query_params.get("before")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError(400, "before must be a delivery id.", param="before", code="invalid_cursor")
    return int(value)


async def list_deliveries(request: Request) -> Response:
    caller = await organization_caller(request)
    found = await _webhook(request, caller.workspace_id)
    limit = limit_of(request)
    rows = await webhooks.deliveries_of(
        services(request).pool, caller.workspace_id, found["id"], _delivery_cursor(request), limit + 1
    )
    return LedgerJSONResponse(listed([delivery_object(r) for r in rows[:limit]], len(rows) > limit))


async def replay_delivery(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    found = await _webhook(request, caller.workspace_id)
    raw = request.path_params["delivery_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise not_found("delivery")
    async with acting(services(request).pool, caller.actor) as conn:
        if not await webhooks.replay(conn, caller.workspace_id, found["id"], int(raw), caller.actor.person):
            raise ApiError(
                404,
                "No such delivery of this webhook, or its event is waiting to be sent already, or it was sent"
                f" again {webhooks.MOST_REPLAYS} times.",
                code="not_found",
            )
    return LedgerJSONResponse({"object": "organization.webhook.replay", "delivery_id": raw, "queued": True}, 202)


# ---- notification settings ---------------------------------------------------------------------


def settings_object(found: contacts.NotificationSettings) -> dict[str, Any]:
    return {
        "object": "organization.notification_settings",
        "low_balance_threshold": None if found.low_balance_threshold is None else str(found.low_balance_threshold),
        "spendable": None if found.spendable is None else str(found.spendable),
        "billing_contacts": [str(m) for m in found.billing_contacts],
    }


async def get_settings(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(settings_object(await contacts.settings_of(services(request).pool, caller.workspace_id)))


async def modify_settings(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    change = await parse_body(request, SettingsChange)
    async with acting(services(request).pool, caller.actor) as conn:
        if "low_balance_threshold" in change.model_fields_set:  # null turns it off; absent keeps it
            await contacts.set_low_balance_threshold(conn, caller.workspace_id, change.low_balance_threshold)
        if change.billing_contacts is not None:
            await contacts.set_billing_contacts(conn, caller.workspace_id, change.billing_contacts)
        found = await contacts.settings_of(conn, caller.workspace_id)
    return LedgerJSONResponse(settings_object(found))


# ---- credit grants (read-only: the operator grants) ---------------------------------------------


def grant_object(row: grants.Grant) -> dict[str, Any]:
    return {
        "object": "organization.credit_grant",
        "id": str(row["id"]),
        "kind": row["kind"],
        "amount": str(row["amount"]),
        "remaining": str(row["remaining"]),
        "priority": row["priority"],
        "expires_at": unix(row["expires_at"]),
        "expired_at": unix(row["expired_at"]),
        "created_at": unix(row["created_at"]),
    }


async def list_grants(request: Request) -> Response:
    caller = await organization_caller(request)
    rows = await grants.grants_of(services(request).pool, caller.workspace_id, limit_of(request))
    return LedgerJSONResponse(listed([grant_object(r) for r in rows], False))

"""The administration API's notification channels, alert rules and alert events, in OpenAI's
shapes. Every admin key reads (never a channel's target: only its hint); changing needs
MANAGE_NOTIFICATIONS (owners and admins). Every change runs in `acting`: audited."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.organization_auth import organization_caller
from api.params import parse_body
from api.routes.organization import limit_of, listed, not_found, path_id, unix
from api.routes.organization_webhooks import allow_private, cipher_of
from api.services import services
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.notify import alerts, channels
from ledger.notify.alerts import RuleSpec

P = Permission


class NewChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    type: Literal["email", "slack", "discord", "teams", "webhook", "pagerduty"]
    target: str = Field(max_length=2000, description="email address, incoming-webhook URL, or PagerDuty routing key")


class Verification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=20)


class ChannelChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class NewRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    condition_type: Literal[
        "budget_threshold", "rate_limit_proximity", "error_rate", "spend_rate", "latency_threshold", "provider_down"
    ]
    threshold: str = Field(max_length=40)
    window_seconds: int = 300
    min_requests: int = 5
    severity: Literal["critical", "error", "warning", "info"] = "warning"
    cooldown_secs: int = 900
    channel_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    budget_id: uuid.UUID | None = None
    provider: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=1000)


class RuleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=1000)


def channel_object(row: channels.Channel, secret: str | None = None) -> dict[str, Any]:
    shown = {
        "object": "organization.notification_channel",
        "id": str(row["id"]),
        "name": row["name"],
        "type": row["type"],
        "target_hint": row["target_hint"],
        "verified": row["is_verified"],
        "verified_at": unix(row["verified_at"]),
        "enabled": row["is_active"],
        "last_sent_at": unix(row["last_sent_at"]),
        "failure_count": row["failure_count"],
        "last_failure_at": unix(row["last_failure_at"]),
        "last_failure_reason": row["last_failure_reason"],
        "created_at": unix(row["created_at"]),
    }
    if secret is not None:
        shown["secret"] = secret
    return shown


def rule_object(row: alerts.Rule) -> dict[str, Any]:
    config = json.loads(row["condition_config"])
    return {
        "object": "organization.alert_rule",
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "condition_type": row["condition_type"],
        "threshold": str(row["threshold"]),
        "window_seconds": row["window_seconds"],
        "min_requests": row["min_requests"],
        "budget_id": config.get("budget_id"),
        "provider": config.get("provider"),
        "severity": row["severity"],
        "cooldown_secs": row["cooldown_secs"],
        "channel_ids": [str(c) for c in row["channel_ids"]],
        "enabled": row["is_active"],
        "last_value": None if row["last_value"] is None else str(row["last_value"]),
        "last_evaluated_at": unix(row["last_evaluated_at"]),
        "last_triggered_at": unix(row["last_triggered_at"]),
        "triggered_count": row["triggered_count"],
        "created_at": unix(row["created_at"]),
    }


def event_object(row: alerts.AlertEvent) -> dict[str, Any]:
    return {
        "object": "organization.alert_event",
        "id": str(row["id"]),
        "rule_id": str(row["rule_id"]),
        "rule": row["rule_name"],
        "condition_type": row["condition_type"],
        "value": None if row["trigger_value"] is None else str(row["trigger_value"]),
        "threshold": None if row["threshold_value"] is None else str(row["threshold_value"]),
        "message": row["message"],
        "severity": row["severity"],
        "notifications_sent": row["notifications_sent"],
        "notifications_failed": row["notifications_failed"],
        "triggered_at": unix(row["triggered_at"]),
        "acknowledged_at": unix(row["acknowledged_at"]),
        "resolved_at": unix(row["resolved_at"]),
        "resolution_note": row["resolution_note"],
        "status": "resolved" if row["resolved_at"] else ("acknowledged" if row["acknowledged_at"] else "open"),
    }


# ---- channels ----------------------------------------------------------------------------------


async def list_channels(request: Request) -> Response:
    caller = await organization_caller(request)
    rows = await channels.channels_of(services(request).pool, caller.workspace_id)
    return LedgerJSONResponse(listed([channel_object(r) for r in rows], False))


async def create_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    new = await parse_body(request, NewChannel)
    box = cipher_of(request)
    async with acting(services(request).pool, caller.actor) as conn:
        made = await channels.create_channel(
            conn, box, caller.workspace_id, new.name, new.type, new.target, caller.actor.person,
            allow_private=allow_private(request),
        )  # fmt: skip
    return LedgerJSONResponse(channel_object(made.channel, made.secret), status_code=201)


def _channel_id(request: Request) -> uuid.UUID:
    return path_id(request, "channel_id", "notification channel")


async def get_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    row = await channels.channel(services(request).pool, caller.workspace_id, _channel_id(request))
    if row is None:
        raise not_found("notification channel")
    return LedgerJSONResponse(channel_object(row))


async def verify_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    body = await parse_body(request, Verification)
    channel_id = _channel_id(request)
    box = cipher_of(request)
    async with acting(services(request).pool, caller.actor) as conn:
        verified = await channels.verify(conn, box, caller.workspace_id, channel_id, body.code, caller.actor.person)
        row = await channels.channel(conn, caller.workspace_id, channel_id)
    if verified is None or row is None:
        raise not_found("notification channel")
    if not verified:
        raise ApiError(400, "That is not the code of the channel's test message, or it expired: send a new test.",
                       param="code", code="invalid_code")  # fmt: skip
    return LedgerJSONResponse(channel_object(row))


async def test_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    box = cipher_of(request)
    async with acting(services(request).pool, caller.actor) as conn:
        sent = await channels.resend_test(conn, box, caller.workspace_id, _channel_id(request), caller.actor.person)
    if sent is None:
        raise not_found("notification channel")
    if not sent:
        raise ApiError(
            429,
            f"This channel had its {channels.MOST_TESTS_A_DAY} test messages today: try again tomorrow.",
            type="rate_limit_error",
            code="too_many_tests",
        )
    return LedgerJSONResponse({"object": "organization.notification_channel.test", "queued": True}, status_code=202)


async def modify_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    body = await parse_body(request, ChannelChange)
    channel_id = _channel_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await channels.set_active(conn, caller.workspace_id, channel_id, body.enabled):
            raise not_found("notification channel")
        row = await channels.channel(conn, caller.workspace_id, channel_id)
    assert row is not None  # changed just above, in this transaction
    return LedgerJSONResponse(channel_object(row))


async def delete_channel(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    channel_id = _channel_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await channels.delete_channel(conn, caller.workspace_id, channel_id):
            raise not_found("notification channel")
    return LedgerJSONResponse(
        {"object": "organization.notification_channel.deleted", "id": str(channel_id), "deleted": True}
    )


# ---- rules ---------------------------------------------------------------------------------------


async def list_rules(request: Request) -> Response:
    caller = await organization_caller(request)
    rows = await alerts.rules_of(services(request).pool, caller.workspace_id)
    return LedgerJSONResponse(listed([rule_object(r) for r in rows], False))


async def create_rule(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    new = await parse_body(request, NewRule)
    spec = RuleSpec(
        new.name, new.condition_type, new.threshold, new.window_seconds, new.min_requests, new.severity,
        new.cooldown_secs, new.channel_ids, new.budget_id, new.provider, new.description,
    )  # fmt: skip
    async with acting(services(request).pool, caller.actor) as conn:
        row = await alerts.create_rule(conn, caller.workspace_id, spec, caller.actor.person)
    return LedgerJSONResponse(rule_object(row), status_code=201)


def _rule_id(request: Request) -> uuid.UUID:
    return path_id(request, "rule_id", "alert rule")


async def get_rule(request: Request) -> Response:
    caller = await organization_caller(request)
    row = await alerts.rule(services(request).pool, caller.workspace_id, _rule_id(request))
    if row is None:
        raise not_found("alert rule")
    return LedgerJSONResponse(rule_object(row))


async def modify_rule(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    body = await parse_body(request, RuleChange)
    rule_id = _rule_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await alerts.set_rule_active(conn, caller.workspace_id, rule_id, body.enabled):
            raise not_found("alert rule")
        row = await alerts.rule(conn, caller.workspace_id, rule_id)
    assert row is not None  # changed just above, in this transaction
    return LedgerJSONResponse(rule_object(row))


async def delete_rule(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    rule_id = _rule_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await alerts.delete_rule(conn, caller.workspace_id, rule_id):
            raise not_found("alert rule")
    return LedgerJSONResponse({"object": "organization.alert_rule.deleted", "id": str(rule_id), "deleted": True})


# ---- events --------------------------------------------------------------------------------------


async def list_events(request: Request) -> Response:
    caller = await organization_caller(request)
    state = request.query_params.get("status")
    if state not in (None, "open", "resolved"):
        raise ApiError(400, "status is open or resolved.", param="status", code="invalid_parameter")
    rows = await alerts.events_of(services(request).pool, caller.workspace_id, state, limit_of(request))
    return LedgerJSONResponse(listed([event_object(r) for r in rows], False))


def _event_id(request: Request) -> uuid.UUID:
    return path_id(request, "event_id", "alert event")


async def acknowledge_event(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    event_id = _event_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await alerts.acknowledge(conn, caller.workspace_id, event_id, caller.actor.person):
            raise ApiError(404, "No such open, unacknowledged alert event in this organization.", code="not_found")
    return LedgerJSONResponse({"object": "organization.alert_event", "id": str(event_id), "status": "acknowledged"})


async def resolve_event(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_NOTIFICATIONS)
    body = await parse_body(request, Resolution)
    event_id = _event_id(request)
    async with acting(services(request).pool, caller.actor) as conn:
        if not await alerts.resolve(conn, caller.workspace_id, event_id, caller.actor.person, body.note):
            raise ApiError(404, "No such open alert event in this organization.", code="not_found")
    return LedgerJSONResponse({"object": "organization.alert_event", "id": str(event_id), "status": "resolved"})

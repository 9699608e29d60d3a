"""Alert rules and alert events (seed 004, migration 0025). Rules are evaluated by the maintenance
pass (and budget thresholds on the settle path); an event opens once per rule, is acknowledged by
a person, and resolves when its condition clears or by hand. Changes run in the caller's
`acting` transaction: audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypedDict, cast, get_args

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidWebhook, TooManyControls, translate_errors
from ledger.money.values import AMOUNT_TEXT

ConditionType = Literal[
    "budget_threshold", "rate_limit_proximity", "error_rate", "spend_rate", "latency_threshold", "provider_down"
]
CONDITION_TYPES: tuple[str, ...] = get_args(ConditionType)
SEVERITIES = ("critical", "error", "warning", "info")
MOST_RULES = 50


class Rule(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str | None
    condition_type: str
    threshold: Decimal
    window_seconds: int
    min_requests: int
    condition_config: str
    severity: str
    cooldown_secs: int
    channel_ids: list[uuid.UUID]
    is_active: bool
    last_triggered_at: datetime | None
    triggered_count: int
    last_value: Decimal | None
    last_evaluated_at: datetime | None
    created_at: datetime


class AlertEvent(TypedDict):
    id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str
    condition_type: str
    trigger_value: Decimal | None
    threshold_value: Decimal | None
    message: str
    severity: str
    notifications_sent: int
    notifications_failed: int
    triggered_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None
    resolution_note: str | None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    condition_type: str
    threshold: object
    window_seconds: int = 300
    min_requests: int = 5
    severity: str = "warning"
    cooldown_secs: int = 900
    channel_ids: Sequence[uuid.UUID] = field(default_factory=tuple)
    budget_id: uuid.UUID | None = None
    provider: str | None = None
    description: str | None = None


def _threshold(value: object) -> Decimal:
    try:
        if not AMOUNT_TEXT.fullmatch(str(value).strip()):  # Decimal() alone reads "1_000", "٣", "1e3"
            raise ValueError(value)
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidWebhook('threshold must be a number, as a string: "5".', param="threshold") from None
    if not number.is_finite() or number < 0 or number >= Decimal("1e12") or number != number.quantize(Decimal("1e-6")):
        raise InvalidWebhook("threshold must be from 0 to below 10^12, at most 6 decimals.", param="threshold")
    return number


def _checked(spec: RuleSpec) -> dict[str, Any]:
    if spec.condition_type not in CONDITION_TYPES:
        raise InvalidWebhook(f"condition_type must be one of {', '.join(CONDITION_TYPES)}.", param="condition_type")
    if spec.severity not in SEVERITIES:
        raise InvalidWebhook(f"severity must be one of {', '.join(SEVERITIES)}.", param="severity")
    name = spec.name.strip()
    if not 1 <= len(name) <= 100 or not name.isprintable():
        raise InvalidWebhook("name must be 1 to 100 printable characters.", param="name")
    if not 60 <= spec.window_seconds <= 2592000:
        raise InvalidWebhook("window_seconds must be from 60 to 2592000 (30 days).", param="window_seconds")
    if not 1 <= spec.min_requests <= 1000000:
        raise InvalidWebhook("min_requests must be from 1 to 1000000.", param="min_requests")
    if not 0 <= spec.cooldown_secs <= 604800:
        raise InvalidWebhook("cooldown_secs must be from 0 to 604800 (a week).", param="cooldown_secs")
    if spec.condition_type == "provider_down" and not spec.provider:
        raise InvalidWebhook("a provider_down rule names its provider.", param="provider")
    config: dict[str, str] = {}
    if spec.budget_id is not None:
        config["budget_id"] = str(spec.budget_id)
    if spec.provider:
        if len(spec.provider) > 64 or not spec.provider.isprintable():
            raise InvalidWebhook("provider must be a provider's name.", param="provider")
        config["provider"] = spec.provider
    return {"name": name, "threshold": _threshold(spec.threshold), "config": json.dumps(config)}


async def create_rule(db: Executor, workspace_id: uuid.UUID, spec: RuleSpec, created_by: uuid.UUID | None) -> Rule:
    checked = _checked(spec)
    await db.fetchval(query("lock_workspace"), workspace_id)  # the count and the insert as one step
    if await db.fetchval(query("count_alert_rules_of_workspace"), workspace_id) >= MOST_RULES:
        raise TooManyControls(f"A workspace has at most {MOST_RULES} alert rules.")
    channels = list(dict.fromkeys(spec.channel_ids))
    known = await db.fetchval(query("count_channels_among"), workspace_id, channels)
    if known != len(channels):
        raise InvalidWebhook("channel_ids must be notification channels of this organization.", param="channel_ids")
    if spec.budget_id is not None and not await db.fetchval(query("budget_in_workspace"), workspace_id, spec.budget_id):
        raise InvalidWebhook("budget_id must be a budget of this organization.", param="budget_id")
    with translate_errors():
        made = await db.fetchval(
            query("insert_alert_rule"),
            workspace_id,
            checked["name"],
            spec.description,
            spec.condition_type,
            checked["threshold"],
            spec.window_seconds,
            spec.min_requests,
            checked["config"],
            spec.severity,
            spec.cooldown_secs,
            channels,
            created_by,
        )
    return cast(Rule, await rule(db, workspace_id, made))


async def rules_of(db: Executor, workspace_id: uuid.UUID) -> list[Rule]:
    return [cast(Rule, dict(row)) for row in await db.fetch(query("alert_rules_of_workspace"), workspace_id)]


async def rule(db: Executor, workspace_id: uuid.UUID, rule_id: uuid.UUID) -> Rule | None:
    row = await db.fetchrow(query("alert_rule_of_workspace"), workspace_id, rule_id)
    return None if row is None else cast(Rule, dict(row))


async def set_rule_active(db: Executor, workspace_id: uuid.UUID, rule_id: uuid.UUID, active: bool) -> bool:
    return await db.fetchval(query("alert_rule_set_active"), workspace_id, rule_id, active) is not None


async def delete_rule(db: Executor, workspace_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
    return await db.fetchval(query("delete_alert_rule"), workspace_id, rule_id) is not None


async def events_of(db: Executor, workspace_id: uuid.UUID, state: str | None, limit: int) -> list[AlertEvent]:
    """Alert events, newest first; state 'open' (not resolved) or 'resolved' filters."""
    rows = await db.fetch(query("alert_events_of_workspace"), workspace_id, state, limit)
    return [cast(AlertEvent, dict(row)) for row in rows]


async def acknowledge(db: Executor, workspace_id: uuid.UUID, event_id: uuid.UUID, by: uuid.UUID | None) -> bool:
    return await db.fetchval(query("acknowledge_alert_event"), workspace_id, event_id, by) is not None


async def resolve(
    db: Executor, workspace_id: uuid.UUID, event_id: uuid.UUID, by: uuid.UUID | None, note: str | None
) -> bool:
    """Resolved by hand (its channels told); False: no such open event in this workspace."""
    if await db.fetchval(query("alert_event_of_workspace"), workspace_id, event_id) is None:
        return False
    # by hand, not "the condition cleared" (that note is the maintenance pass's own)
    note = note or "resolved by hand"
    return bool(await db.fetchval("SELECT ledger_resolve_alert($1, $2, $3)", event_id, by, note))


async def evaluate(db: Executor) -> tuple[int, int]:
    row = await db.fetchrow("SELECT * FROM evaluate_alert_rules()")
    return int(row["opened"]), int(row["resolved"])

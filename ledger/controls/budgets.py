"""Budgets: spend caps on a workspace, project, member, key or end user, per UTC period, checked
at every hold (migration 0021). Changes run in the caller's `acting` transaction: audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, TypedDict, cast, get_args

import asyncpg

from ledger.controls.scopes import model_pattern, require_room, scope_id_of
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidControl, translate_errors
from ledger.money.values import AMOUNT_TEXT

Period = Literal["daily", "weekly", "monthly", "yearly", "lifetime"]
PERIODS: tuple[str, ...] = get_args(Period)
DEFAULT_THRESHOLDS = (50, 80, 100)
MOST_CREDITS = Decimal("1e12")


class Budget(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    scope_type: str
    scope_id: str
    model_pattern: str | None
    amount: Decimal
    period: str
    hard: bool
    alert_thresholds: list[int]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    period_start: datetime
    resets_at: datetime | None
    spent: Decimal
    held: Decimal
    remaining: Decimal


def _budget(row: object) -> Budget:
    return cast(Budget, dict(cast(asyncpg.Record, row)))


def amount_of(value: object) -> Decimal:
    """Credits: a positive decimal of at most 6 places, below 10^12."""
    try:
        if not AMOUNT_TEXT.fullmatch(str(value).strip()):  # Decimal() alone reads "1_000", "٣", "1e3"
            raise ValueError(value)
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidControl('amount must be a number of credits, as a string: "20".', param="amount") from None
    if not amount.is_finite() or amount <= 0 or amount >= MOST_CREDITS or amount != amount.quantize(Decimal("1e-6")):
        raise InvalidControl("amount must be above 0 and below 10^12 credits, with at most 6 decimals.", param="amount")
    return amount


def thresholds_of(values: list[int] | None) -> list[int]:
    if values is None:
        return list(DEFAULT_THRESHOLDS)
    if len(values) > 10 or any(not 1 <= v <= 1000 for v in values):
        raise InvalidControl("alert_thresholds: at most 10 whole percents from 1 to 1000.", param="alert_thresholds")
    return sorted(set(values))


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    scope_type: str
    scope_id: str | None
    model: str | None
    amount: object
    period: str
    hard: bool = True
    alert_thresholds: list[int] | None = None


async def create_budget(
    db: Executor, workspace_id: uuid.UUID, spec: BudgetSpec, created_by: uuid.UUID | None
) -> Budget:
    if spec.period not in PERIODS:
        raise InvalidControl(f"period must be one of {', '.join(PERIODS)}.", param="period")
    await require_room(db, workspace_id, "budgets")
    with translate_errors():
        made = await db.fetchval(
            query("insert_budget"),
            workspace_id,
            spec.scope_type,
            scope_id_of(workspace_id, spec.scope_type, spec.scope_id),
            model_pattern(spec.model),
            amount_of(spec.amount),
            spec.period,
            spec.hard,
            thresholds_of(spec.alert_thresholds),
            created_by,
        )
    return cast(Budget, await budget(db, workspace_id, made))


async def budgets_of(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[Budget]:
    return [_budget(row) for row in await db.fetch(query("budgets_of_workspace"), workspace_id, after, limit)]


async def budget(db: Executor, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
    row = await db.fetchrow(query("budget_of_workspace"), workspace_id, budget_id)
    return None if row is None else _budget(row)


async def modify_budget(
    db: Executor,
    workspace_id: uuid.UUID,
    budget_id: uuid.UUID,
    amount: object | None = None,
    hard: bool | None = None,
    alert_thresholds: list[int] | None = None,
) -> Budget | None:
    changed = await db.fetchval(
        query("update_budget"),
        workspace_id,
        budget_id,
        None if amount is None else amount_of(amount),
        hard,
        None if alert_thresholds is None else thresholds_of(alert_thresholds),
    )
    return None if changed is None else await budget(db, workspace_id, changed)


async def delete_budget(db: Executor, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
    return await db.fetchval(query("delete_budget"), workspace_id, budget_id) is not None

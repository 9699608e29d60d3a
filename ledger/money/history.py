"""A user's own history, a page at a time, newest first: credit transactions and metered requests.

Each page reader takes the same bounds (from, before, one filter, an id cursor, a row limit; a
None bound is no bound), so a caller pages through either the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict, cast

from ledger.db.executor import Executor
from ledger.db.queries import query


class TransactionRow(TypedDict):
    """sql/queries/transactions_page_of_user.sql: one credit transaction as its owner sees it."""

    id: int
    transaction_type: str
    amount: Decimal
    balance_after: Decimal
    allowance_used: Decimal
    description: str | None
    reference_id: str | None
    created_at: datetime


async def transactions_page(
    db: Executor,
    user_id: uuid.UUID,
    since: datetime | None,
    until: datetime | None,
    transaction_type: str | None,
    before_id: int | None,
    limit: int,
) -> list[TransactionRow]:
    rows = await db.fetch(query("transactions_page_of_user"), user_id, since, until, transaction_type, before_id, limit)
    return [cast(TransactionRow, dict(r)) for r in rows]


class UsageRow(TypedDict):
    """sql/queries/usage_page_of_user.sql: one metered request as its owner sees it."""

    id: int
    request_id: str
    api: str | None
    model: str
    provider: str | None
    power_level: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    input_audio_tokens: int
    cache_audio_read_tokens: int
    input_image_tokens: int
    cache_image_read_tokens: int
    reasoning_tokens: int
    output_audio_tokens: int
    output_image_tokens: int
    cost_usd: Decimal
    cost_multiplier: Decimal | None
    credits_used: Decimal
    latency_ms: int | None
    success: bool
    status_code: int | None
    error_message: str | None
    is_byok: bool
    created_at: datetime
    project_id: uuid.UUID | None  # the project its gateway key was in (sql 0019)


async def usage_page(
    db: Executor,
    user_id: uuid.UUID,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    before_id: int | None,
    limit: int,
    project_id: uuid.UUID | None = None,
) -> list[UsageRow]:
    rows = await db.fetch(query("usage_page_of_user"), user_id, since, until, model, before_id, limit, project_id)
    return [cast(UsageRow, dict(r)) for r in rows]


class DayUsage(TypedDict):
    """sql/queries/usage_by_day_of_user.sql: one model's requests and credits on one UTC day."""

    day: date
    model: str
    requests: int
    credits: Decimal


@dataclass(frozen=True, slots=True)
class DailyUsage:
    days: int
    first_day: date  # UTC, included
    last_day: date  # UTC today by the database's clock, included
    rows: list[DayUsage]  # only the day/model pairs with a request, by day then model


MAX_USAGE_DAYS = 90


async def usage_by_day(db: Executor, user_id: uuid.UUID, days: int, by: str = "model") -> DailyUsage:
    """The user's requests and credits per UTC day and model (or project, `by`) over the last
    `days` UTC days, today included; every request counts, failed ones too (a failure can be
    charged)."""
    if not 1 <= days <= MAX_USAGE_DAYS:
        raise ValueError(f"days must be 1 to {MAX_USAGE_DAYS}, got {days}")
    if by not in ("model", "project"):
        raise ValueError(f"usage is grouped by model or project, not {by!r}")
    window = await db.fetchrow(query("usage_days_window"), days)
    statement = query("usage_by_day_of_user") if by == "model" else query("usage_by_day_and_project_of_user")
    rows = await db.fetch(statement, user_id, window["first_day"], window["last_day"])
    return DailyUsage(days, window["first_day"], window["last_day"], [cast(DayUsage, dict(r)) for r in rows])

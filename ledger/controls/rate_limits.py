"""Rate limits: requests per window under one of four strategies, tokens per minute and requests
in flight, on the same scopes as budgets, checked at every hold (migration 0021). Changes run in
the caller's `acting` transaction: audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict, cast, get_args

import asyncpg

from ledger.controls.scopes import model_pattern, require_room, scope_id_of
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidControl, translate_errors

Strategy = Literal["sliding_window", "fixed_window", "token_bucket", "leaky_bucket"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
BOUNDS = {
    "requests": (1, 10_000),
    "window_seconds": (1, 86_400),
    "tokens_per_minute": (1, 1_000_000_000),
    "max_concurrent": (1, 100_000),
}


class RateLimit(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    scope_type: str
    scope_id: str
    model_pattern: str | None
    preset: str | None
    strategy: str
    requests: int | None
    window_seconds: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None
    in_flight: int
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


def _limit(row: object) -> RateLimit:
    found = dict(cast(asyncpg.Record, row))
    return cast(RateLimit, {key: found[key] for key in RateLimit.__annotations__})


@dataclass(frozen=True, slots=True)
class LimitNumbers:
    """A limit's numbers, or the preset it follows instead."""

    preset: str | None = None
    strategy: str = "sliding_window"
    requests: int | None = None
    window_seconds: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None

    def checked(self) -> LimitNumbers:
        if self.strategy not in STRATEGIES:
            raise InvalidControl(f"strategy must be one of {', '.join(STRATEGIES)}.", param="strategy")
        numbers = {name: getattr(self, name) for name in BOUNDS}
        if self.preset is not None:
            if any(value is not None for value in numbers.values()):
                raise InvalidControl("Give a preset or the limit's own numbers, not both.", param="preset")
            return self
        for name, value in numbers.items():
            low, high = BOUNDS[name]
            if value is not None and not low <= value <= high:
                raise InvalidControl(f"{name} must be a whole number from {low} to {high}.", param=name)
        if (self.requests is None) != (self.window_seconds is None):
            raise InvalidControl("requests and window_seconds go together.", param="window_seconds")
        if all(value is None for value in numbers.values()):
            raise InvalidControl(
                "A rate limit needs requests (with window_seconds), tokens_per_minute or max_concurrent, or a preset.",
                param="requests",
            )
        return self


async def create_rate_limit(
    db: Executor,
    workspace_id: uuid.UUID,
    scope_type: str,
    scope_id: str | None,
    model: str | None,
    numbers: LimitNumbers,
    created_by: uuid.UUID | None,
) -> RateLimit:
    n = numbers.checked()
    await require_room(db, workspace_id, "rate_limits")
    try:
        with translate_errors():
            made = await db.fetchval(
                query("insert_rate_limit"),
                workspace_id,
                scope_type,
                scope_id_of(workspace_id, scope_type, scope_id),
                model_pattern(model),
                n.preset,
                n.strategy,
                n.requests,
                n.window_seconds,
                n.tokens_per_minute,
                n.max_concurrent,
                created_by,
            )
    except asyncpg.ForeignKeyViolationError:
        raise InvalidControl(f"There is no rate-limit preset named {n.preset!r}.", param="preset") from None
    return cast(RateLimit, await rate_limit(db, workspace_id, made))


async def rate_limits_of(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[RateLimit]:
    return [_limit(row) for row in await db.fetch(query("rate_limits_of_workspace"), workspace_id, after, limit)]


async def rate_limit(db: Executor, workspace_id: uuid.UUID, limit_id: uuid.UUID) -> RateLimit | None:
    row = await db.fetchrow(query("rate_limit_of_workspace"), workspace_id, limit_id)
    return None if row is None else _limit(row)


async def modify_rate_limit(
    db: Executor, workspace_id: uuid.UUID, limit_id: uuid.UUID, numbers: LimitNumbers
) -> RateLimit | None:
    n = numbers.checked()
    try:
        changed = await db.fetchval(
            query("update_rate_limit"),
            workspace_id,
            limit_id,
            n.preset,
            n.strategy,
            n.requests,
            n.window_seconds,
            n.tokens_per_minute,
            n.max_concurrent,
        )
    except asyncpg.ForeignKeyViolationError:
        raise InvalidControl(f"There is no rate-limit preset named {n.preset!r}.", param="preset") from None
    return None if changed is None else await rate_limit(db, workspace_id, changed)


async def delete_rate_limit(db: Executor, workspace_id: uuid.UUID, limit_id: uuid.UUID) -> bool:
    return await db.fetchval(query("delete_rate_limit"), workspace_id, limit_id) is not None


async def presets(db: Executor) -> list[dict[str, object]]:
    return [dict(row) for row in await db.fetch(query("rate_limit_presets"))]

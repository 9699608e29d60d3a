"""The administration API's spend controls, in OpenAI's list and error shapes: budgets, rate
limits, the rate-limit presets, and model-access requests. Every member's admin key may read;
changing needs MANAGE_CONTROLS (owners and admins). Every change runs in `acting`: audited."""

from __future__ import annotations

import uuid
from typing import Any, Literal

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
from ledger.accounts.roles import Permission
from ledger.controls import access_requests, budgets, rate_limits
from ledger.controls.budgets import BudgetSpec
from ledger.controls.rate_limits import LimitNumbers

P = Permission
ScopeType = Literal["workspace", "project", "member", "key", "end_user"]


class Scope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ScopeType
    id: str | None = Field(default=None, max_length=256)


class NewBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope
    model: str | None = Field(default=None, max_length=200)
    amount: str = Field(max_length=40)
    period: Literal["daily", "weekly", "monthly", "yearly", "lifetime"]
    hard: bool = True
    alert_thresholds: list[int] | None = Field(default=None, max_length=10)


class BudgetChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str | None = Field(default=None, max_length=40)
    hard: bool | None = None
    alert_thresholds: list[int] | None = Field(default=None, max_length=10)


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: str | None = Field(default=None, max_length=40)
    strategy: Literal["sliding_window", "fixed_window", "token_bucket", "leaky_bucket"] = "sliding_window"
    requests: int | None = None
    window_seconds: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None

    def numbers(self) -> LimitNumbers:
        return LimitNumbers(
            self.preset, self.strategy, self.requests, self.window_seconds, self.tokens_per_minute, self.max_concurrent
        )


class NewRateLimit(Numbers):
    scope: Scope
    model: str | None = Field(default=None, max_length=200)


class ModelAccessAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: uuid.UUID
    model: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)


def scope_object(scope_type: str, scope_id: str) -> dict[str, str]:
    return {"type": scope_type, "id": scope_id}


def budget_object(row: budgets.Budget) -> dict[str, Any]:
    return {
        "object": "organization.budget",
        "id": str(row["id"]),
        "scope": scope_object(row["scope_type"], row["scope_id"]),
        "model": row["model_pattern"],
        "amount": str(row["amount"]),
        "period": row["period"],
        "hard": row["hard"],
        "alert_thresholds": row["alert_thresholds"],
        "spent": str(row["spent"]),
        "held": str(row["held"]),
        "remaining": str(row["remaining"]),
        "period_start": unix(row["period_start"]),
        "resets_at": unix(row["resets_at"]),
        "created_at": unix(row["created_at"]),
    }


def rate_limit_object(row: rate_limits.RateLimit) -> dict[str, Any]:
    return {
        "object": "organization.rate_limit",
        "id": str(row["id"]),
        "scope": scope_object(row["scope_type"], row["scope_id"]),
        "model": row["model_pattern"],
        "preset": row["preset"],
        "strategy": row["strategy"],
        "requests": row["requests"],
        "window_seconds": row["window_seconds"],
        "tokens_per_minute": row["tokens_per_minute"],
        "max_concurrent": row["max_concurrent"],
        "in_flight": row["in_flight"],
        "created_at": unix(row["created_at"]),
    }


def access_request_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "organization.model_access_request",
        "id": str(row["id"]),
        "key_id": str(row["key_id"]),
        "model": row["model"],
        "reason": row["reason"],
        "status": row["status"],
        "requested_by": None if row["requested_by"] is None else str(row["requested_by"]),
        "created_at": unix(row["created_at"]),
        "decided_at": unix(row["decided_at"]),
    }


# ---- budgets -----------------------------------------------------------------------------------


async def list_budgets(request: Request) -> Response:
    caller = await organization_caller(request)
    limit = limit_of(request)
    rows = await budgets.budgets_of(services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1)
    return LedgerJSONResponse(listed([budget_object(r) for r in rows[:limit]], len(rows) > limit))


async def create_budget(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    new = await parse_body(request, NewBudget)
    spec = BudgetSpec(new.scope.type, new.scope.id, new.model, new.amount, new.period, new.hard, new.alert_thresholds)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await budgets.create_budget(conn, caller.workspace_id, spec, caller.actor.person)
    return LedgerJSONResponse(budget_object(row), status_code=201)


async def _budget(request: Request, workspace_id: uuid.UUID) -> budgets.Budget:
    row = await budgets.budget(services(request).pool, workspace_id, path_id(request, "budget_id", "budget"))
    if row is None:
        raise not_found("budget")
    return row


async def get_budget(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(budget_object(await _budget(request, caller.workspace_id)))


async def modify_budget(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    change = await parse_body(request, BudgetChange)
    found = await _budget(request, caller.workspace_id)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await budgets.modify_budget(
            conn, caller.workspace_id, found["id"], change.amount, change.hard, change.alert_thresholds
        )
    if row is None:
        raise not_found("budget")
    return LedgerJSONResponse(budget_object(row))


async def delete_budget(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    budget_id = path_id(request, "budget_id", "budget")
    async with acting(services(request).pool, caller.actor) as conn:
        if not await budgets.delete_budget(conn, caller.workspace_id, budget_id):
            raise not_found("budget")
    return LedgerJSONResponse({"object": "organization.budget.deleted", "id": str(budget_id), "deleted": True})


# ---- rate limits -------------------------------------------------------------------------------


async def list_rate_limits(request: Request) -> Response:
    caller = await organization_caller(request)
    limit = limit_of(request)
    rows = await rate_limits.rate_limits_of(
        services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1
    )
    return LedgerJSONResponse(listed([rate_limit_object(r) for r in rows[:limit]], len(rows) > limit))


async def create_rate_limit(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    new = await parse_body(request, NewRateLimit)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await rate_limits.create_rate_limit(
            conn, caller.workspace_id, new.scope.type, new.scope.id, new.model, new.numbers(), caller.actor.person
        )
    return LedgerJSONResponse(rate_limit_object(row), status_code=201)


async def _rate_limit(request: Request, workspace_id: uuid.UUID) -> rate_limits.RateLimit:
    limit_id = path_id(request, "rate_limit_id", "rate limit")
    row = await rate_limits.rate_limit(services(request).pool, workspace_id, limit_id)
    if row is None:
        raise not_found("rate limit")
    return row


async def get_rate_limit(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(rate_limit_object(await _rate_limit(request, caller.workspace_id)))


async def modify_rate_limit(request: Request) -> Response:
    """Replaces the limit's numbers (or preset); its scope and model stay."""
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    change = await parse_body(request, Numbers)
    found = await _rate_limit(request, caller.workspace_id)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await rate_limits.modify_rate_limit(conn, caller.workspace_id, found["id"], change.numbers())
    if row is None:
        raise not_found("rate limit")
    return LedgerJSONResponse(rate_limit_object(row))


async def delete_rate_limit(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    limit_id = path_id(request, "rate_limit_id", "rate limit")
    async with acting(services(request).pool, caller.actor) as conn:
        if not await rate_limits.delete_rate_limit(conn, caller.workspace_id, limit_id):
            raise not_found("rate limit")
    return LedgerJSONResponse({"object": "organization.rate_limit.deleted", "id": str(limit_id), "deleted": True})


async def list_presets(request: Request) -> Response:
    await organization_caller(request)
    rows = await rate_limits.presets(services(request).pool)
    objects = [{"object": "organization.rate_limit_preset", "id": row["name"], **row} for row in rows]
    return LedgerJSONResponse(listed(objects, False))


# ---- model-access requests ---------------------------------------------------------------------


async def list_access_requests(request: Request) -> Response:
    caller = await organization_caller(request)
    rows = await access_requests.access_requests_of(services(request).pool, caller.workspace_id, limit_of(request))
    return LedgerJSONResponse(listed([access_request_object(r) for r in rows], False))


async def create_access_request(request: Request) -> Response:
    caller = await organization_caller(request)
    ask = await parse_body(request, ModelAccessAsk)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await access_requests.ask_for_model(
            conn, caller.workspace_id, ask.key_id, caller.actor.person, ask.model, ask.reason
        )
    if row is None:
        raise ApiError(404, "No such active API key in this organization.", param="key_id", code="not_found")
    return LedgerJSONResponse(access_request_object(row), status_code=201)


def decide_access_request(approve: bool) -> Any:
    async def endpoint(request: Request) -> Response:
        caller = await organization_caller(request)
        caller.require(P.MANAGE_CONTROLS)
        request_id = path_id(request, "request_id", "model-access request")
        async with acting(services(request).pool, caller.actor) as conn:
            row = await access_requests.decide(conn, caller.workspace_id, request_id, approve, caller.actor.person)
        if row is None:
            raise ApiError(404, "No such pending model-access request in this organization.", code="not_found")
        return LedgerJSONResponse(access_request_object(row))

    return endpoint

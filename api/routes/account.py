"""A key owner's own account: balance, power level, transactions, usage. Nobody sees or changes
another user's data: every query is bound to the authenticated key's user."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner, key_holder_db
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import page, parse_body, query_datetime, query_int, query_text
from api.services import services
from ledger.billing.subscriptions import owner_account
from ledger.controls.overview import controls_over_key
from ledger.errors import UnknownPowerLevel
from ledger.gateway.keys import KeyOwner
from ledger.money import grants
from ledger.money.accounts import set_power_level
from ledger.money.history import MAX_USAGE_DAYS, transactions_page, usage_by_day, usage_page

MAX_PAGE = 500

# ledger.money.history's page readers: (db, user, from, to, filter, id cursor, limit) -> rows
PageReader = Callable[
    [Any, uuid.UUID, datetime | None, datetime | None, str | None, int | None, int],
    Awaitable[list[Any]],
]


class AccountChange(BaseModel):
    power_level: str = Field(min_length=1, max_length=64)


async def balance(request: Request) -> Response:
    """The wallet, and the budgets and rate limits over the calling key with what is left of each."""
    owner = await gateway_owner(request)
    return await _account(request, owner)


def budget_left(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "scope": {"type": row["scope_type"], "id": row["scope_id"]},
        "model": row["model_pattern"],
        "period": row["period"],
        "hard": row["hard"],
        "amount": str(row["amount"]),
        "spent": str(row["spent"]),
        "held": str(row["held"]),
        "remaining": str(row["remaining"]),
        "resets_at": None if row["resets_at"] is None else row["resets_at"].isoformat(),
    }


def rate_limit_left(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "scope": {"type": row["scope_type"], "id": row["scope_id"]},
        "model": row["model_pattern"],
        "preset": row["preset"],
        "strategy": row["strategy"],
        "requests": row["requests"],
        "window_seconds": row["window_seconds"],
        "tokens_per_minute": row["tokens_per_minute"],
        "max_concurrent": row["max_concurrent"],
        "in_flight": row["in_flight"],
    }


async def change_account(request: Request) -> Response:
    """The caller's own default power level; answered with the account as the balance shows it."""
    owner = await gateway_owner(request, manages=True)
    change = await parse_body(request, AccountChange)
    try:
        async with key_holder_db(request, owner) as conn:
            await set_power_level(conn, owner.user_id, change.power_level)
    except UnknownPowerLevel as exc:
        raise ApiError(
            400,
            f"Unknown power level {change.power_level[:64]!r}. {exc.hint or ''}".strip(),
            param="power_level",
            code="unknown_power_level",
        ) from None
    return await _account(request, owner)


async def _account(request: Request, owner: KeyOwner) -> Response:
    """The account as the balance shows it: the wallet, and the controls over the calling key."""
    account = await owner_account(services(request).pool, owner.user_id)
    controls = await controls_over_key(services(request).pool, owner.key_id)
    lots = await grants.lots_of(services(request).pool, owner.user_id)
    return LedgerJSONResponse(
        {
            "object": "credit_balance",
            **account,
            "budgets": [budget_left(row) for row in controls if row["kind"] == "budget"],
            "rate_limits": [rate_limit_left(row) for row in controls if row["kind"] == "rate_limit"],
            "credits_by_lot": [lot_left(lot) for lot in lots],
        }
    )


def lot_left(lot: grants.Lot) -> dict[str, Any]:
    """One lot of the balance, in spending order: a grant (its kind, priority and expiry) or the
    purchased part (no expiry)."""
    return {
        "lot": lot["lot"],
        "grant_id": None if lot["grant_id"] is None else str(lot["grant_id"]),
        "kind": lot["kind"],
        "priority": lot["priority"],
        "expires_at": None if lot["expires_at"] is None else lot["expires_at"].isoformat(),
        "remaining": str(lot["remaining"]),
    }


async def usage_daily(request: Request) -> Response:
    """Credits and requests per UTC day and model over the last `days` UTC days, today included."""
    owner = await gateway_owner(request)
    days = query_int(request, "days", 30, low=1, high=MAX_USAGE_DAYS)
    group_by = request.query_params.get("group_by", "model")
    if group_by not in ("model", "project"):
        raise ApiError(400, "'group_by' is model or project.", param="group_by", code="invalid_parameter")
    usage = await usage_by_day(services(request).pool, owner.user_id, days, group_by)
    return LedgerJSONResponse(
        {
            "object": "list",
            "days": usage.days,
            "from": usage.first_day,
            "to": usage.last_day,
            "data": usage.rows,
        }
    )


async def transactions(request: Request) -> Response:
    return await _own_rows(request, transactions_page, filter_param="type")


async def usage(request: Request) -> Response:
    project_id = query_uuid(request, "project_id")

    async def read(db: Any, user_id: uuid.UUID, since: Any, until: Any, model: Any, cursor: Any, limit: int) -> Any:
        return await usage_page(db, user_id, since, until, model, cursor, limit, project_id)

    return await _own_rows(request, read, filter_param="model")


def query_uuid(request: Request, name: str) -> uuid.UUID | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, f"'{name}' must be an id.", param=name, code="invalid_parameter") from None


async def _own_rows(request: Request, read: PageReader, *, filter_param: str) -> Response:
    """A page of the caller's rows: newest first, from/to dates, one filter, an id cursor."""
    owner = await gateway_owner(request)
    limit = query_int(request, "limit", 50, low=1, high=MAX_PAGE)
    rows = await read(
        services(request).pool,
        owner.user_id,
        query_datetime(request, "from"),
        query_datetime(request, "to"),
        query_text(request, filter_param),
        _cursor(request),
        limit + 1,
    )
    return LedgerJSONResponse(page(rows, limit))


def _cursor(request: Request) -> int | None:
    if request.query_params.get("after") is None:
        return None
    return query_int(request, "after", 0, low=1, high=2**63 - 1)

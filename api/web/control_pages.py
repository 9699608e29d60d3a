"""/dashboard/controls: the workspace's budgets (what each has spent, holds and has left) and rate
limits for every member; owners and admins set and delete them and decide model-access requests;
members who make keys ask for a model their key does not allow. Same ledger functions and role
checks as the administration API (/v1/organization/budgets, /rate_limits, /model_access_requests)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes.organization_controls import ModelAccessAsk, NewBudget, NewRateLimit
from api.services import services
from api.web.pages import USER_AREA, PageError, checked_form, form_model, page, redirect, render
from api.web.user_pages import signed_in
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.controls import access_requests, budgets, rate_limits
from ledger.controls.budgets import PERIODS, BudgetSpec
from ledger.controls.rate_limits import STRATEGIES
from ledger.controls.scopes import SCOPE_TYPES
from ledger.gateway.keys import keys_of_workspace

P = Permission
ROOT = USER_AREA.root + "/controls"
NOTICES = {
    "budget_created": "Budget set.",
    "budget_deleted": "Budget deleted.",
    "limit_created": "Rate limit set.",
    "limit_deleted": "Rate limit deleted.",
    "asked": "Your request was sent to the workspace's owners and admins.",
    "approved": "Approved: the model is allowed on the key.",
    "denied": "Request denied.",
}


def _uuid(request: Request, name: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise PageError(404, f"No such {what} in this workspace.") from None


def _number(fields: dict[str, str], name: str) -> int | None:
    text = fields.get(name, "").strip()
    return int(text) if text.isascii() and text.isdigit() else (None if not text else -1)


@page(USER_AREA)
async def controls_page(request: Request) -> Response:
    session, viewer = await signed_in(request)
    pool = services(request).pool
    context: dict[str, Any] = {
        "budgets": await budgets.budgets_of(pool, viewer.user_id, None, 1000),
        "limits": await rate_limits.rate_limits_of(pool, viewer.user_id, None, 1000),
        "requests": await access_requests.access_requests_of(pool, viewer.user_id, 100),
        "presets": await rate_limits.presets(pool),
        "scopes": SCOPE_TYPES,
        "periods": PERIODS,
        "strategies": STRATEGIES,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    if viewer.may(P.MANAGE_KEYS):
        context["keys"] = await keys_of_workspace(pool, viewer.user_id)
    return render(request, "user/controls.html", context, session=session)


@page(USER_AREA)
async def create_budget(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_CONTROLS)
    fields = await checked_form(request, session)
    new = form_model(
        NewBudget,
        {
            "scope": {"type": fields.get("scope", ""), "id": fields.get("scope_id") or None},
            "model": fields.get("model") or None,
            "amount": fields.get("amount", ""),
            "period": fields.get("period", ""),
            "hard": fields.get("soft") != "on",
        },
    )
    spec = BudgetSpec(new.scope.type, new.scope.id, new.model, new.amount, new.period, new.hard)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await budgets.create_budget(conn, viewer.user_id, spec, viewer.person_id)
    return redirect(ROOT, notice="budget_created")


@page(USER_AREA)
async def delete_budget(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_CONTROLS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await budgets.delete_budget(conn, viewer.user_id, _uuid(request, "budget_id", "budget")):
            raise PageError(404, "No such budget in this workspace.")
    return redirect(ROOT, notice="budget_deleted")


@page(USER_AREA)
async def create_rate_limit(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_CONTROLS)
    fields = await checked_form(request, session)
    new = form_model(
        NewRateLimit,
        {
            "scope": {"type": fields.get("scope", ""), "id": fields.get("scope_id") or None},
            "model": fields.get("model") or None,
            "preset": fields.get("preset") or None,
            "strategy": fields.get("strategy") or "sliding_window",
            "requests": _number(fields, "requests"),
            "window_seconds": _number(fields, "window_seconds"),
            "tokens_per_minute": _number(fields, "tokens_per_minute"),
            "max_concurrent": _number(fields, "max_concurrent"),
        },
    )
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await rate_limits.create_rate_limit(
            conn, viewer.user_id, new.scope.type, new.scope.id, new.model, new.numbers(), viewer.person_id
        )
    return redirect(ROOT, notice="limit_created")


@page(USER_AREA)
async def delete_rate_limit(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_CONTROLS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await rate_limits.delete_rate_limit(conn, viewer.user_id, _uuid(request, "limit_id", "rate limit")):
            raise PageError(404, "No such rate limit in this workspace.")
    return redirect(ROOT, notice="limit_deleted")


@page(USER_AREA)
async def ask_for_model(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_KEYS)
    fields = await checked_form(request, session)
    ask = form_model(
        ModelAccessAsk,
        {"key_id": fields.get("key_id", ""), "model": fields.get("model", ""), "reason": fields.get("reason") or None},
    )
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        made = await access_requests.ask_for_model(
            conn, viewer.user_id, ask.key_id, viewer.person_id, ask.model, ask.reason
        )
    if made is None:
        raise PageError(404, "No such active key in this workspace.")
    return redirect(ROOT, notice="asked")


def decide(approve: bool) -> Any:
    @page(USER_AREA)
    async def endpoint(request: Request) -> Response:
        session, viewer = await signed_in(request, P.MANAGE_CONTROLS)
        await checked_form(request, session)
        request_id = _uuid(request, "request_id", "model-access request")
        async with acting(services(request).pool, viewer.actor(request)) as conn:
            if await access_requests.decide(conn, viewer.user_id, request_id, approve, viewer.person_id) is None:
                raise PageError(404, "No such pending request in this workspace.")
        return redirect(ROOT, notice="approved" if approve else "denied")

    return endpoint


approve_request = decide(True)
deny_request = decide(False)

"""The administration API's auto top-up, in OpenAI's shapes: read by any admin key; saving a card
(Stripe Checkout in setup mode) and changing the settings need BUY_CREDITS (owners and admins).
Every change runs in `acting`: audited."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from api.jsonresponse import LedgerJSONResponse
from api.organization_auth import organization_caller
from api.params import parse_body
from api.routes.organization import unix
from api.routes.purchases import ReturnUrl, started_checkout, stripe_of
from api.services import services
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.billing import auto_top_up
from ledger.billing.auto_top_up import TopUpChange

P = Permission


class CardSetup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    success_url: ReturnUrl
    cancel_url: ReturnUrl


class TopUpSettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    threshold: str | None = Field(default=None, max_length=40)
    package_id: uuid.UUID | None = None
    monthly_limit: str | None = Field(default=None, max_length=40)


def top_up_object(found: auto_top_up.TopUpSettings | None, recent: list[dict[str, Any]]) -> dict[str, Any]:
    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return {
        "object": "organization.auto_top_up",
        "enabled": bool(found and found["enabled"]),
        "threshold": text(found and found["threshold"]),
        "package_id": text(found and found["package_id"]),
        "package_credits": text(found and found["package_credits"]),
        "monthly_limit": text(found and found["monthly_limit"]),
        "card_saved": bool(found and found["payment_method_id"]),
        "failures_in_a_row": found["consecutive_failures"] if found else 0,
        "next_try_at": unix(found["next_try_at"]) if found else None,
        "disabled_reason": found["disabled_reason"] if found else None,
        "recent": [
            {
                "id": str(row["id"]),
                "status": row["status"],
                "credits": str(row["credits"]),
                "amount_cents": row["amount_cents"],
                "currency": row["currency"],
                "failure_code": row["failure_code"],
                "failure_message": row["failure_message"],
                "created_at": unix(row["created_at"]),
            }
            for row in recent
        ],
    }


async def get_top_up(request: Request) -> Response:
    caller = await organization_caller(request)
    pool = services(request).pool
    found = await auto_top_up.settings_of(pool, caller.workspace_id)
    return LedgerJSONResponse(top_up_object(found, await auto_top_up.top_ups_of(pool, caller.workspace_id)))


async def set_top_up(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.BUY_CREDITS)
    body = await parse_body(request, TopUpSettingsChange)
    change = TopUpChange(body.enabled, body.threshold, body.package_id, body.monthly_limit)
    async with acting(services(request).pool, caller.actor) as conn:
        found = await auto_top_up.configure(conn, caller.workspace_id, change, caller.actor.person)
        recent = await auto_top_up.top_ups_of(conn, caller.workspace_id)
    return LedgerJSONResponse(top_up_object(found, recent))


async def save_card(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.BUY_CREDITS)
    body = await parse_body(request, CardSetup)
    client = stripe_of(request)
    session = await started_checkout(
        auto_top_up.card_setup(services(request).pool, client, caller.workspace_id, body.success_url, body.cancel_url)
    )
    return LedgerJSONResponse(session, status_code=201)

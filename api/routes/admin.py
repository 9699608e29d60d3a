"""The operator's API (Bearer LEDGER_ADMIN_TOKEN): users, gateway keys, credit grants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from api.auth import require_admin
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import parse_body
from ledger import credits, gateway_keys, users


class NewUser(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    tier: str = "trial"
    power_level: str = "balanced"


class NewKey(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = None


class CreditGrant(BaseModel):
    amount: str | int  # a decimal string; floats are refused
    transaction_type: Literal["admin_adjustment", "bonus"]
    reference: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)

    @field_validator("amount", mode="before")
    @classmethod
    def no_floats(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('send the amount as a decimal string, e.g. "12.50"')
        return value


async def create_user(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewUser)
    user = await users.create_user(request.app.state.pool, new.email, new.tier, new.power_level)
    return LedgerJSONResponse(user, status_code=201)


async def create_key(request: Request) -> Response:
    require_admin(request)
    new = await parse_body(request, NewKey)
    key = await gateway_keys.create_key(
        request.app.state.pool, request.path_params["user_id"], new.name, new.expires_at
    )
    return LedgerJSONResponse(
        {"id": key.id, "key": key.key, "prefix": key.prefix, "name": key.name, "expires_at": key.expires_at},
        status_code=201,
    )


async def revoke_key(request: Request) -> Response:
    require_admin(request)
    if not await gateway_keys.revoke_key(request.app.state.pool, request.path_params["key_id"]):
        raise ApiError(404, "No such active key.", code="not_found")
    return LedgerJSONResponse({"id": request.path_params["key_id"], "revoked": True})


async def grant_credits(request: Request) -> Response:
    """A bonus adds credits; an admin_adjustment adds, or removes when its amount is negative."""
    require_admin(request)
    grant = await parse_body(request, CreditGrant)
    amount = str(grant.amount).strip()
    pool, user_id = request.app.state.pool, request.path_params["user_id"]
    if amount.startswith("-") and grant.transaction_type == "admin_adjustment":
        result = await credits.debit_user_credits(
            pool, user_id, amount[1:], "admin_adjustment", grant.reference, grant.description
        )
        if not result.success:
            raise ApiError(
                409,
                f"The balance ({result.new_balance}) cannot cover removing {amount[1:]} credits.",
                code="insufficient_balance",
            )
    else:
        result = await credits.add_user_credits(
            pool, user_id, amount, grant.transaction_type, grant.reference, grant.description
        )
    return LedgerJSONResponse(
        {
            "success": result.success,
            "new_balance": result.new_balance,
            "transaction_id": result.transaction_id,
        }
    )

"""The caller's own gateway keys: list, create (the key shown once), revoke. Every statement is
bound to the authenticated key's user, so nobody lists or revokes another user's keys."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner, key_holder_db
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import UtcDatetime, parse_body
from api.services import services
from ledger.gateway import keys


class NewOwnKey(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    expires_at: UtcDatetime | None = Field(default=None, description="a future time (no zone: UTC); none: never")


async def list_keys(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    rows = await keys.keys_of_owner(services(request).pool, owner.user_id)
    return LedgerJSONResponse({"object": "list", "data": rows})


async def create_key(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    new = await parse_body(request, NewOwnKey)
    async with key_holder_db(request, owner) as conn:
        key = await keys.create_own_key(conn, owner.user_id, new.name, new.expires_at)
    return LedgerJSONResponse(
        {"id": key.id, "key": key.key, "prefix": key.prefix, "name": key.name, "expires_at": key.expires_at},
        status_code=201,
    )


async def revoke_key(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    key_id = request.path_params["key_id"]
    async with key_holder_db(request, owner) as conn:
        revoked = await keys.revoke_own_key(conn, owner.user_id, key_id)
    if not revoked:
        raise ApiError(404, "No such active key of yours.", code="not_found")
    return LedgerJSONResponse({"id": key_id, "revoked": True})

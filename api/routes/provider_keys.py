"""BYOK keys of the calling user: add, list, delete. The key itself is never returned."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner, key_holder_db
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import parse_body
from api.services import services
from ledger.gateway import byok


class NewProviderKey(BaseModel):
    provider: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    api_key: str = Field(min_length=8, max_length=4096)
    name: str | None = Field(default=None, max_length=200)
    is_default: bool = True


def cipher_of(request: Request) -> byok.KeyCipher:
    cipher: byok.KeyCipher | None = services(request).cipher
    if cipher is None:
        raise ApiError(
            503,
            "BYOK is off on this service: the operator has not set LEDGER_ENCRYPTION_KEY.",
            type="service_unavailable",
            code="byok_disabled",
        )
    return cipher


def check_provider(request: Request, provider: str) -> None:
    """A key only for a provider this service routes to (one it never calls would be dead weight)."""
    if provider not in services(request).providers:
        known = ", ".join(sorted(services(request).providers))
        raise ApiError(
            400,
            f"Unknown provider '{provider}'. This service routes to: {known}.",
            param="provider",
            code="unknown_provider",
        )


async def add_provider_key(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    cipher = cipher_of(request)
    new = await parse_body(request, NewProviderKey)
    check_provider(request, new.provider)
    async with key_holder_db(request, owner) as conn:
        row = await byok.add_key(conn, cipher, owner.user_id, new.provider, new.api_key, new.name, new.is_default)
    return LedgerJSONResponse(row, status_code=201)


async def list_provider_keys(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    rows = await byok.list_keys(services(request).pool, services(request).cipher, owner.user_id)
    return LedgerJSONResponse({"object": "list", "data": rows})


async def delete_provider_key(request: Request) -> Response:
    owner = await gateway_owner(request, manages=True)
    async with key_holder_db(request, owner) as conn:
        deleted = await byok.deactivate_key(conn, owner.user_id, request.path_params["key_id"])
    if not deleted:
        raise ApiError(404, "No such provider key.", code="not_found")
    return LedgerJSONResponse({"id": request.path_params["key_id"], "deleted": True})

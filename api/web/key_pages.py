"""/dashboard/keys: the user's gateway keys (create, shown once; revoke) and their BYOK provider
keys (add, delete; only the hint is ever shown), through the same functions and the same checks
as /v1/keys and /v1/provider-keys."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes.keys import NewOwnKey
from api.routes.provider_keys import NewProviderKey, check_provider, cipher_of
from api.services import services
from api.web.pages import USER_AREA, PageError, checked_form, form_model, page, redirect, render
from api.web.sessions import Session
from api.web.user_pages import ROOT, signed_in
from ledger.gateway import byok
from ledger.gateway import keys as gateway_keys
from ledger.gateway.keys import KeyOwner, NewKey


async def _keys_page(
    request: Request, session: Session, owner: KeyOwner, *, created: NewKey | None = None, status: int = 200
) -> Response:
    pool = services(request).pool
    context: dict[str, Any] = {
        "keys": await gateway_keys.keys_of_owner(pool, owner.user_id),
        "session_key_id": str(owner.key_id),
        "created": created,
        "provider_keys": await byok.list_keys(pool, services(request).cipher, owner.user_id),
        "providers": sorted(services(request).providers),
        "byok_on": services(request).cipher is not None,
        "notice": request.query_params.get("notice") and NOTICES.get(request.query_params["notice"]),
    }
    return render(request, "user/keys.html", context, status, session=session)


NOTICES = {
    "key_revoked": "Key revoked.",
    "provider_key_added": "Provider key added. Requests to that provider now use it.",
    "provider_key_deleted": "Provider key deleted.",
}


@page(USER_AREA)
async def keys_page(request: Request) -> Response:
    session, owner = await signed_in(request)
    return await _keys_page(request, session, owner)


@page(USER_AREA)
async def create_key(request: Request) -> Response:
    """The new key is shown on this answer only (not stored, not in a redirect's URL)."""
    session, owner = await signed_in(request)
    fields = await checked_form(request, session)
    new = form_model(NewOwnKey, {"name": fields.get("name") or None, "expires_at": fields.get("expires_at") or None})
    created = await gateway_keys.create_own_key(services(request).pool, owner.user_id, new.name, new.expires_at)
    return await _keys_page(request, session, owner, created=created, status=201)


@page(USER_AREA)
async def revoke_key(request: Request) -> Response:
    session, owner = await signed_in(request)
    await checked_form(request, session)
    if not await gateway_keys.revoke_own_key(services(request).pool, owner.user_id, request.path_params["key_id"]):
        raise PageError(404, "No such active key of yours.")
    # revoking the key this session signed in with ends the session: the next page asks to sign in
    return redirect(ROOT + "/keys", notice="key_revoked")


@page(USER_AREA)
async def add_provider_key(request: Request) -> Response:
    session, owner = await signed_in(request)
    fields = await checked_form(request, session)
    cipher = cipher_of(request)
    new = form_model(
        NewProviderKey,
        {
            "provider": fields.get("provider", ""),
            "api_key": fields.get("api_key", ""),
            "name": fields.get("name") or None,
            "is_default": fields.get("is_default") == "on",
        },
    )
    check_provider(request, new.provider)
    pool = services(request).pool
    await byok.add_key(pool, cipher, owner.user_id, new.provider, new.api_key, new.name, new.is_default)
    return redirect(ROOT + "/keys", notice="provider_key_added")


@page(USER_AREA)
async def delete_provider_key(request: Request) -> Response:
    session, owner = await signed_in(request)
    await checked_form(request, session)
    if not await byok.deactivate_key(services(request).pool, owner.user_id, request.path_params["key_id"]):
        raise PageError(404, "No such provider key of yours.")
    return redirect(ROOT + "/keys", notice="provider_key_deleted")

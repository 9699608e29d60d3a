"""/dashboard/keys: the workspace's gateway keys (create in a project, shown once; revoke) and its
BYOK provider keys (add, delete; only the hint is ever shown), through the same functions and the
same checks as /v1/keys and /v1/provider-keys. Who may do what is the role's (ledger.accounts.roles):
a developer creates keys and revokes the ones they made; owners and admins revoke any."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes.keys import NewOwnKey
from api.routes.provider_keys import NewProviderKey, check_provider, cipher_of
from api.services import services
from api.web.pages import USER_AREA, PageError, checked_form, form_model, page, redirect, render
from api.web.sessions import Session
from api.web.user_pages import ROOT, signed_in
from api.web.viewer import Viewer
from ledger.accounts import projects
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.gateway import byok
from ledger.gateway import keys as gateway_keys
from ledger.gateway.keys import NewKey

P = Permission


async def _keys_page(
    request: Request, session: Session, viewer: Viewer, *, created: NewKey | None = None, status: int = 200
) -> Response:
    pool = services(request).pool
    live_projects = await projects.projects_of(pool, viewer.user_id, archived=True, limit=1000)
    context: dict[str, Any] = {
        "keys": await gateway_keys.keys_of_workspace(pool, viewer.user_id),
        "session_key_id": str(viewer.key_id),
        "created": created,
        "projects": [p for p in live_projects if p["archived_at"] is None],
        "project_names": {p["id"]: p["name"] for p in live_projects},
        "may_revoke_any": viewer.role in ("OWNER", "ADMIN"),
        "byok_allowed": viewer.may(P.MANAGE_PROVIDER_KEYS),
        "provider_keys": await byok.list_keys(pool, services(request).cipher, viewer.user_id)
        if viewer.may(P.MANAGE_PROVIDER_KEYS)
        else [],
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
    session, viewer = await signed_in(request, P.MANAGE_KEYS)
    return await _keys_page(request, session, viewer)


def _project_id(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, "No such project in this workspace.") from None


@page(USER_AREA)
async def create_key(request: Request) -> Response:
    """The new key is shown on this answer only (not stored, not in a redirect's URL)."""
    session, viewer = await signed_in(request, P.MANAGE_KEYS)
    fields = await checked_form(request, session)
    new = form_model(NewOwnKey, {"name": fields.get("name") or None, "expires_at": fields.get("expires_at") or None})
    project_id = _project_id(fields.get("project_id", ""))
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        created = await gateway_keys.create_own_key(
            conn, viewer.user_id, new.name, new.expires_at, project_id, viewer.person_id
        )
    return await _keys_page(request, session, viewer, created=created, status=201)


@page(USER_AREA)
async def revoke_key(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_KEYS)
    await checked_form(request, session)
    pool = services(request).pool
    key_id = request.path_params["key_id"]
    if viewer.role not in ("OWNER", "ADMIN"):  # a developer: only the keys they made
        mine = {str(k["id"]) for k in await gateway_keys.keys_of_workspace(pool, viewer.user_id)
                if k["created_by"] is not None and k["created_by"] == viewer.person_id}  # fmt: skip
        if key_id not in mine:
            raise PageError(403, "A developer may revoke only the keys they made.")
    async with acting(pool, viewer.actor(request)) as conn:
        revoked = await gateway_keys.revoke_own_key(conn, viewer.user_id, key_id)
    if not revoked:
        raise PageError(404, "No such active key of yours.")
    # revoking the key this session signed in with ends the session: the next page asks to sign in
    return redirect(ROOT + "/keys", notice="key_revoked")


@page(USER_AREA)
async def add_provider_key(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_PROVIDER_KEYS)
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
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await byok.add_key(conn, cipher, viewer.user_id, new.provider, new.api_key, new.name, new.is_default)
    return redirect(ROOT + "/keys", notice="provider_key_added")


@page(USER_AREA)
async def delete_provider_key(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_PROVIDER_KEYS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        deleted = await byok.deactivate_key(conn, viewer.user_id, request.path_params["key_id"])
    if not deleted:
        raise PageError(404, "No such provider key of yours.")
    return redirect(ROOT + "/keys", notice="provider_key_deleted")

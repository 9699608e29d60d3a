"""Who is looking at /dashboard, in which workspace, with which role.

Two kinds of session reach it: a person's (signed in with email and password, a `sessions` row,
found by the SHA-256 of the cookie's nonce), and, for personal workspaces only and while the
operator allows it (LEDGER_DASHBOARD_KEY_SIGN_IN), a gateway key's. The role is read on every
page view, so a member removed or demoted mid-session loses access at their next request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.requests import Request

from api.services import services
from api.web.pages import USER_AREA, NoWorkspace, PageError, SecondFactorDue, SignInRequired, session_of
from api.web.sessions import Session
from ledger.accounts import sessions as person_sessions
from ledger.accounts import workspaces
from ledger.accounts.actor import Actor
from ledger.accounts.roles import Permission, Role, may
from ledger.gateway import keys as gateway_keys
from ledger.logs import request_id_var

# The subject of a person's session cookie (a key session's subject is the key's id)
PERSON = "person"


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: uuid.UUID  # the workspace's wallet id (the seed's user_credits.user_id)
    role: Role
    personal: bool
    key_id: uuid.UUID | None = None  # a key session's key
    person_id: uuid.UUID | None = None  # a person's session
    email: str | None = None
    session_id: uuid.UUID | None = None  # the person's sessions row

    def may(self, permission: Permission) -> bool:
        return may(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise PageError(403, f"Your role in this workspace ({self.role.lower()}) may not {permission.value}.")

    def actor(self, request: Request) -> Actor:
        if self.person_id is not None:
            base = Actor("person", str(self.person_id), self.email, person=self.person_id)
        else:
            base = Actor("gateway_key", str(self.key_id), "dashboard (gateway key)")
        return base.at(request.client.host if request.client else None, request.headers.get("user-agent"),
                       request_id_var.get())  # fmt: skip


@dataclass(frozen=True, slots=True)
class PersonSession:
    """A person's live session, before a workspace is chosen."""

    cookie: Session
    live: person_sessions.LiveSession


async def person_session(request: Request, *, mfa_done: bool = True) -> PersonSession:
    cookie = session_of(request, USER_AREA)
    if cookie is None or cookie.subject != PERSON:
        raise SignInRequired
    live = await person_sessions.live_session(services(request).pool, cookie.nonce)
    if live is None:
        raise SignInRequired
    if mfa_done and live.mfa_pending:
        raise SecondFactorDue
    return PersonSession(cookie, live)


async def viewer_of(request: Request) -> tuple[Session, Viewer]:
    cookie = session_of(request, USER_AREA)
    if cookie is None:
        raise SignInRequired
    pool = services(request).pool
    if cookie.subject != PERSON:
        if cookie.user_id is None or not services(request).settings.dashboard_key_sign_in:
            raise SignInRequired
        owner = await gateway_keys.session_owner(pool, cookie.subject, cookie.user_id, cookie.nonce)
        if owner is None or not owner.personal:
            raise SignInRequired
        return cookie, Viewer(owner.user_id, "OWNER", True, key_id=owner.key_id)
    found = await person_session(request)
    live = found.live
    role: Role | None = None
    workspace_id = live.workspace_id
    if workspace_id is not None:
        role = await workspaces.role_in(pool, workspace_id, live.person_id)
    if role is None:  # removed from it, or none chosen: the first workspace they are still in
        memberships = await workspaces.workspaces_of(pool, live.person_id)
        if not memberships:
            raise NoWorkspace
        workspace_id, role = memberships[0]["id"], memberships[0]["role"]
        await person_sessions.move_to_workspace(pool, live.id, workspace_id)
    assert workspace_id is not None
    found_workspace = await workspaces.workspace(pool, workspace_id)
    if found_workspace is None:
        raise SignInRequired
    return cookie, Viewer(
        workspace_id,
        role,
        found_workspace["kind"] == "personal",
        person_id=live.person_id,
        email=live.email,
        session_id=live.id,
    )

"""/dashboard for teams: the workspaces a person is in (switch, create a team), the team page
(members and roles, invitations, projects, admin keys) and the audit log, through the same
ledger functions and the same role checks as the administration API (/v1/organization/...)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.links import email_link_base
from api.routes.organization import NewAdminKey, NewInvite, ProjectName, RoleChange, role_of
from api.services import services
from api.web.csv_export import csv_pages
from api.web.pages import (
    SECURITY_HEADERS,
    USER_AREA,
    PageError,
    SignInRequired,
    checked_form,
    form_model,
    page,
    redirect,
    render,
    row_cursor,
    sign_in_fields,
    sign_in_form,
)
from api.web.person_pages import person_actor, start_person_session
from api.web.sessions import Session
from api.web.user_pages import signed_in
from api.web.viewer import PERSON, Viewer, person_session
from ledger.accounts import admin_keys, audit, invitations, people, projects, workspaces
from ledger.accounts.actor import acting
from ledger.accounts.mail import MailNotSent
from ledger.accounts.mail_messages import send_invitation
from ledger.accounts.roles import ROLES, Permission, may_grant
from ledger.accounts.sessions import move_to_workspace

P = Permission
ROOT = USER_AREA.root
AUDIT_ROWS = 50

NOTICES = {
    "workspace_created": "Team workspace created: you are its owner.",
    "switched": "Workspace changed.",
    "invited": "Invitation sent.",
    "invite_revoked": "Invitation revoked.",
    "role_changed": "Role changed.",
    "member_removed": "Member removed.",
    "project_created": "Project created.",
    "project_renamed": "Project renamed.",
    "project_archived": "Project archived; its keys were revoked.",
    "admin_key_deleted": "Admin key deleted.",
    "joined": "You joined the workspace.",
}


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _uuid(request: Request, name: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise PageError(404, f"No such {what} in this workspace.") from None


def _person_viewer(viewer: Viewer) -> uuid.UUID:
    if viewer.person_id is None:
        raise PageError(403, "Teams are for people who sign in with their email, not with a gateway key.")
    return viewer.person_id


# ---- workspaces -------------------------------------------------------------------------------


@page(USER_AREA)
async def workspaces_page(request: Request) -> Response:
    found = await person_session(request)
    pool = services(request).pool
    person = await people.person(pool, found.live.person_id)
    context = {
        "memberships": await workspaces.workspaces_of(pool, found.live.person_id),
        "current": found.live.workspace_id,
        "verified": person is not None and person["email_verified_at"] is not None,
        "notice": _notice(request),
    }
    return render(request, "user/workspaces.html", context, session=found.cookie)


@page(USER_AREA)
async def create_team(request: Request) -> Response:
    found = await person_session(request)
    fields = await checked_form(request, found.cookie)
    name = form_model(ProjectName, {"name": fields.get("name", "")}).name
    svc = services(request)
    person = await people.person(svc.pool, found.live.person_id)
    if person is None or person["email_verified_at"] is None:
        raise PageError(403, "Confirm your email address first (see Security): a team's owner must be reachable.")
    async with acting(svc.pool, person_actor(request, person["id"], person["email"])) as conn:
        team = await workspaces.create_workspace(conn, name, person["id"], self_service=True)
        await move_to_workspace(conn, found.live.id, team["id"])
    return redirect(ROOT + "/team", notice="workspace_created")


@page(USER_AREA)
async def switch_workspace(request: Request) -> Response:
    found = await person_session(request)
    fields = await checked_form(request, found.cookie)
    pool = services(request).pool
    try:
        target = uuid.UUID(fields.get("workspace_id", ""))
    except ValueError:
        raise PageError(404, "You are not a member of that workspace.") from None
    if await workspaces.role_in(pool, target, found.live.person_id) is None:
        raise PageError(404, "You are not a member of that workspace.")
    await move_to_workspace(pool, found.live.id, target)
    return redirect(ROOT, notice="switched")


# ---- the team page ----------------------------------------------------------------------------


@page(USER_AREA)
async def team_page(request: Request) -> Response:
    session, viewer = await signed_in(request)
    return await _team_page(request, session, viewer)


async def _team_page(
    request: Request, session: Session, viewer: Viewer, *, new_admin_key: str | None = None, status: int = 200
) -> Response:
    """The team page; `new_admin_key` is shown on this answer only."""
    _person_viewer(viewer)
    pool = services(request).pool
    workspace = await workspaces.workspace(pool, viewer.user_id)
    context: dict[str, Any] = {
        "workspace": workspace,
        "members": await workspaces.members(pool, viewer.user_id, None, 1000),
        "projects": await projects.projects_of(pool, viewer.user_id, archived=True, limit=1000),
        "roles": ROLES,
        "grantable": [role for role in ROLES if may_grant(viewer.role, role)],
        "notice": _notice(request),
        "new_admin_key": new_admin_key,
    }
    if viewer.may(P.MANAGE_INVITATIONS):
        context["invitations"] = [
            {**row, "status": invitations.status_of(row)}
            for row in await invitations.invitations_of(pool, viewer.user_id, None, 100)
        ]
    if viewer.may(P.MANAGE_ADMIN_KEYS):
        context["admin_keys"] = await admin_keys.admin_keys_of(pool, viewer.user_id, None, 100)
    return render(request, "user/team.html", context, status, session=session)


@page(USER_AREA)
async def invite(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_INVITATIONS)
    fields = await checked_form(request, session)
    new = form_model(NewInvite, {"email": fields.get("email", ""), "role": fields.get("role", "").lower()})
    role = role_of(new.role)
    if not may_grant(viewer.role, role):
        raise PageError(403, "Only an owner may invite an owner.")
    svc = services(request)
    base = email_link_base(request)
    async with acting(svc.pool, viewer.actor(request)) as conn:
        made = await invitations.invite(conn, viewer.user_id, new.email, role, viewer.email)
        workspace = await workspaces.workspace(conn, viewer.user_id)
    assert workspace is not None
    try:
        await send_invitation(svc.mailer, base, new.email, workspace["name"], role, made.token)
    except MailNotSent as exc:
        raise PageError(503, f"The invitation was made but its email could not be sent ({exc}).") from None
    return redirect(ROOT + "/team", notice="invited")


@page(USER_AREA)
async def revoke_invite(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_INVITATIONS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        row = await invitations.revoke(conn, viewer.user_id, _uuid(request, "invite_id", "invitation"))
    if row is None:
        raise PageError(404, "No such pending invitation in this workspace.")
    return redirect(ROOT + "/team", notice="invite_revoked")


async def _member(request: Request, viewer: Viewer) -> workspaces.Member:
    found = await workspaces.member(services(request).pool, viewer.user_id, _uuid(request, "person_id", "member"))
    if found is None:
        raise PageError(404, "No such member in this workspace.")
    return found


@page(USER_AREA)
async def change_role(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_MEMBERS)
    fields = await checked_form(request, session)
    role = role_of(form_model(RoleChange, {"role": fields.get("role", "").lower()}).role)
    member = await _member(request, viewer)
    if not may_grant(viewer.role, role) or not may_grant(viewer.role, member["role"]):
        raise PageError(403, "Only an owner may make someone an owner or change an owner's role.")
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await workspaces.change_role(conn, viewer.user_id, member["id"], role)
    return redirect(ROOT + "/team", notice="role_changed")


@page(USER_AREA)
async def remove_member(request: Request) -> Response:
    """Removing a member, or leaving (anyone may remove themselves; the last owner may not)."""
    session, viewer = await signed_in(request)
    await checked_form(request, session)
    member = await _member(request, viewer)
    leaving = member["id"] == viewer.person_id
    if not leaving:
        viewer.require(P.MANAGE_MEMBERS)
        if not may_grant(viewer.role, member["role"]):
            raise PageError(403, "Only an owner may remove an owner.")
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await workspaces.remove_member(conn, viewer.user_id, member["id"])
    return redirect(ROOT + "/workspaces" if leaving else ROOT + "/team", notice="member_removed")


@page(USER_AREA)
async def create_project(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_PROJECTS)
    fields = await checked_form(request, session)
    name = form_model(ProjectName, {"name": fields.get("name", "")}).name
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await projects.create_project(conn, viewer.user_id, name)
    return redirect(ROOT + "/team", notice="project_created")


@page(USER_AREA)
async def rename_project(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_PROJECTS)
    fields = await checked_form(request, session)
    name = form_model(ProjectName, {"name": fields.get("name", "")}).name
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        row = await projects.rename_project(conn, viewer.user_id, _uuid(request, "project_id", "project"), name)
    if row is None:
        raise PageError(404, "No such active project in this workspace.")
    return redirect(ROOT + "/team", notice="project_renamed")


@page(USER_AREA)
async def archive_project(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_PROJECTS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        row = await projects.archive_project(conn, viewer.user_id, _uuid(request, "project_id", "project"))
    if row is None:
        raise PageError(404, "No such project in this workspace (the default project cannot be archived).")
    return redirect(ROOT + "/team", notice="project_archived")


@page(USER_AREA)
async def create_admin_key(request: Request) -> Response:
    """The new admin key is shown on this answer only."""
    session, viewer = await signed_in(request, P.MANAGE_ADMIN_KEYS)
    fields = await checked_form(request, session)
    name = form_model(NewAdminKey, {"name": fields.get("name", "")}).name
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        made = await admin_keys.create_admin_key(conn, viewer.user_id, name, viewer.email)
    return await _team_page(request, session, viewer, new_admin_key=made.key, status=201)


@page(USER_AREA)
async def delete_admin_key(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_ADMIN_KEYS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        deleted = await admin_keys.revoke_admin_key(conn, viewer.user_id, _uuid(request, "key_id", "admin key"))
    if not deleted:
        raise PageError(404, "No such admin key in this workspace.")
    return redirect(ROOT + "/team", notice="admin_key_deleted")


# ---- the audit log ----------------------------------------------------------------------------


@page(USER_AREA)
async def audit_page(request: Request) -> Response:
    session, viewer = await signed_in(request, P.READ_AUDIT_LOG)
    rows = await audit.audit_page(
        services(request).pool, viewer.user_id, after=row_cursor(request), limit=AUDIT_ROWS + 1
    )
    context = {"rows": rows[:AUDIT_ROWS], "next": rows[AUDIT_ROWS - 1]["id"] if len(rows) > AUDIT_ROWS else None}
    return render(request, "user/audit.html", context, session=session)


AUDIT_CSV_COLUMNS = (
    "id", "created_at", "action", "resource_type", "resource_id", "actor_type", "actor_id", "actor_label",
    "ip", "user_agent", "request_id", "before", "after",
)  # fmt: skip


@page(USER_AREA)
async def audit_csv(request: Request) -> Response:
    _, viewer = await signed_in(request, P.READ_AUDIT_LOG)
    pool = services(request).pool

    async def read(cursor: int | None) -> Sequence[Mapping[str, Any]]:
        rows = await audit.audit_page(pool, viewer.user_id, after=cursor, limit=500)
        return [{**row, "before": _json(row["before"]), "after": _json(row["after"])} for row in rows]

    return StreamingResponse(
        csv_pages(AUDIT_CSV_COLUMNS, read),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "content-disposition": 'attachment; filename="audit-log.csv"'},
    )


def _json(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


# ---- invitations: accepting -------------------------------------------------------------------


@page(USER_AREA)
async def accept_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:100]
    async with services(request).pool.acquire() as conn, conn.transaction():
        found = await invitations.pending(conn, token)
    if found is None:
        raise PageError(404, "This invitation is unknown, used, revoked or expired: ask for a new one.")
    signed_in_as = await _signed_in_email(request)
    context = {"token": token, "invitation": found, "signed_in_as": signed_in_as}
    return sign_in_form(request, USER_AREA, "user/accept.html", context)


async def _signed_in_email(request: Request) -> str | None:
    try:
        return (await person_session(request)).live.email
    except Exception:
        return None


@page(USER_AREA)
async def accept(request: Request) -> Response:
    """Accept as the signed-in person (their email must be the invitation's), or sign up with the
    invitation's email (the token proves the mailbox, so it counts as confirmed)."""
    fields = await sign_in_fields(request, USER_AREA)
    token = fields.get("token", "")
    svc = services(request)
    try:
        current = await person_session(request)
    except SignInRequired:
        current = None
    async with acting(svc.pool, person_actor(request)) as conn:
        found = await invitations.pending(conn, token)
        if found is None:
            raise PageError(404, "This invitation is unknown, used, revoked or expired: ask for a new one.")
        if current is not None:
            if current.live.email.lower() != found["email"].lower():
                raise PageError(403, f"This invitation is for {found['email']}; you are signed in as another person.")
            person_id = current.live.person_id
        else:
            if await people.person_id_by_email(conn, found["email"]) is not None:
                raise PageError(409, "You have an account already: sign in, then open the invitation's link again.")
            made = await people.sign_up(conn, found["email"], fields.get("password", ""), None, email_proved=True)
            person_id = made.person["id"]
        await invitations.accept(conn, found, person_id)
    if current is not None:
        await move_to_workspace(svc.pool, current.live.id, found["workspace_id"])
        return redirect(ROOT, notice="joined")
    return await start_person_session(
        request, person_id, mfa_pending=False, location=ROOT + "?notice=joined", workspace_id=found["workspace_id"]
    )


__all__ = ["PERSON"]

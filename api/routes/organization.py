"""The administration API, shaped like OpenAI's (/v1/organization/..., the organization being the
caller's workspace): users, invites, projects and their API keys, the audit log, admin keys.

Every id in a path is looked up inside the caller's workspace only: another workspace's id is
the same 404 as an unknown one. Every change runs in `acting`, so the audit log records it in
the same transaction."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.links import email_link_base
from api.organization_auth import Caller, organization_caller
from api.params import UtcDatetime, check_text, parse_body, query_int, to_utc
from api.services import services
from ledger.accounts import admin_keys, audit, invitations, projects, workspaces
from ledger.accounts.actor import acting
from ledger.accounts.emails import clean_email
from ledger.accounts.mail_messages import send_invitation
from ledger.accounts.roles import Permission, Role, may_grant
from ledger.controls.key_restrictions import KeyRestrictions, restrict_key
from ledger.gateway import keys as gateway_keys

P = Permission
LowerRole = Literal["owner", "admin", "developer", "viewer"]
MAX_LIMIT = 100


# ---- shapes ------------------------------------------------------------------------------------


def unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def listed(objects: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list shape."""
    return {
        "object": "list",
        "data": objects,
        "first_id": objects[0]["id"] if objects else None,
        "last_id": objects[-1]["id"] if objects else None,
        "has_more": has_more,
    }


def user_object(member: workspaces.Member) -> dict[str, Any]:
    return {
        "object": "organization.user",
        "id": str(member["id"]),
        "name": member["name"] or "",
        "email": member["email"],
        "role": member["role"].lower(),
        "added_at": unix(member["added_at"]),
    }


def invite_object(row: invitations.Invitation) -> dict[str, Any]:
    return {
        "object": "organization.invite",
        "id": str(row["id"]),
        "email": row["email"],
        "role": row["role"].lower(),
        "status": invitations.status_of(row),
        "invited_at": unix(row["created_at"]),
        "expires_at": unix(row["expires_at"]),
        "accepted_at": unix(row["accepted_at"]),
    }


def project_object(row: projects.Project) -> dict[str, Any]:
    return {
        "object": "organization.project",
        "id": str(row["id"]),
        "name": row["name"],
        "is_default": row["is_default"],
        "created_at": unix(row["created_at"]),
        "archived_at": unix(row["archived_at"]),
        "status": "archived" if row["archived_at"] else "active",
    }


def api_key_object(row: gateway_keys.KeyInProject) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        "id": str(row["id"]),
        "name": row["name"] or "",
        "redacted_value": row["prefix"] + "...",
        "created_at": unix(row["created_at"]),
        "last_used_at": unix(row["last_used_at"]),
        "expires_at": unix(row["expires_at"]),
        "owner": {"type": "user", "id": str(row["created_by"])} if row["created_by"] else None,
        "allowed_models": row["allowed_models"],
        "allowed_providers": row["allowed_providers"],
        "allowed_ips": row["allowed_ips"],
    }


def admin_key_object(row: admin_keys.AdminKey) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        "id": str(row["id"]),
        "name": row["name"] or "",
        "redacted_value": row["prefix"] + "...",
        "created_at": unix(row["created_at"]),
        "last_used_at": unix(row["last_used_at"]),
        "owner": {"type": "admin_key_creator", "name": row["created_by"]},
    }


def audit_object(row: audit.AuditRow) -> dict[str, Any]:
    return {
        "object": "organization.audit_log",
        "id": str(row["id"]),
        "type": row["action"],
        "effective_at": unix(row["created_at"]),
        "actor": {
            "type": row["actor_type"],
            "id": row["actor_id"],
            "label": row["actor_label"],
            "ip_address": row["ip"],
            "user_agent": row["user_agent"],
        },
        "resource": {"type": row["resource_type"], "id": row["resource_id"]},
        "before": row["before"],
        "after": row["after"],
        "request_id": row["request_id"],
    }


# ---- helpers -----------------------------------------------------------------------------------


def path_id(request: Request, name: str, what: str) -> uuid.UUID:
    """A path id as a UUID; anything else is the same 404 as an unknown id."""
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise not_found(what) from None


def not_found(what: str) -> ApiError:
    return ApiError(404, f"No such {what} in this organization.", code="not_found")


def cursor(request: Request, name: str) -> uuid.UUID | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(
            400, f"'{name}' must be an id from a previous page.", param=name, code="invalid_parameter"
        ) from None


def limit_of(request: Request, default: int = 20) -> int:
    return query_int(request, "limit", default, low=1, high=MAX_LIMIT)


def role_of(value: LowerRole) -> Role:
    return value.upper()  # type: ignore[return-value]


# ---- users -------------------------------------------------------------------------------------


async def list_users(request: Request) -> Response:
    caller = await organization_caller(request)
    limit = limit_of(request)
    rows = await workspaces.members(services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1)
    return LedgerJSONResponse(listed([user_object(r) for r in rows[:limit]], len(rows) > limit))


async def _member(request: Request, caller: Caller) -> workspaces.Member:
    found = await workspaces.member(services(request).pool, caller.workspace_id, path_id(request, "user_id", "user"))
    if found is None:
        raise not_found("user")
    return found


async def get_user(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(user_object(await _member(request, caller)))


class RoleChange(BaseModel):
    role: LowerRole


async def modify_user(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_MEMBERS)
    change = await parse_body(request, RoleChange)
    member = await _member(request, caller)
    role = role_of(change.role)
    if not may_grant(caller.role, role) or not may_grant(caller.role, member["role"]):
        raise ApiError(
            403, "Only an owner may make someone an owner or change an owner's role.", code="permission_denied"
        )
    async with acting(services(request).pool, caller.actor) as conn:
        changed = await workspaces.change_role(conn, caller.workspace_id, member["id"], role)
    if changed is None:
        raise not_found("user")
    return LedgerJSONResponse(user_object(changed))


async def delete_user(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_MEMBERS)
    member = await _member(request, caller)
    if not may_grant(caller.role, member["role"]):
        raise ApiError(403, "Only an owner may remove an owner.", code="permission_denied")
    async with acting(services(request).pool, caller.actor) as conn:
        removed = await workspaces.remove_member(conn, caller.workspace_id, member["id"])
    if not removed:
        raise not_found("user")
    return LedgerJSONResponse({"object": "organization.user.deleted", "id": str(member["id"]), "deleted": True})


# ---- invites -----------------------------------------------------------------------------------


class NewInvite(BaseModel):
    email: Annotated[str, AfterValidator(clean_email)]
    role: LowerRole


async def create_invite(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_INVITATIONS)
    new = await parse_body(request, NewInvite)
    role = role_of(new.role)
    if not may_grant(caller.role, role):
        raise ApiError(403, "Only an owner may invite an owner.", code="permission_denied")
    svc = services(request)
    base = email_link_base(request)
    async with acting(svc.pool, caller.actor) as conn:
        made = await invitations.invite(conn, caller.workspace_id, new.email, role, caller.actor.label)
        workspace = await workspaces.workspace(conn, caller.workspace_id)
    assert workspace is not None
    await send_invitation(svc.mailer, base, new.email, workspace["name"], role, made.token)
    return LedgerJSONResponse(invite_object(made.invitation), status_code=201)


async def list_invites(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_INVITATIONS)
    limit = limit_of(request)
    rows = await invitations.invitations_of(
        services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1
    )
    return LedgerJSONResponse(listed([invite_object(r) for r in rows[:limit]], len(rows) > limit))


async def get_invite(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_INVITATIONS)
    row = await invitations.invitation(
        services(request).pool, caller.workspace_id, path_id(request, "invite_id", "invite")
    )
    if row is None:
        raise not_found("invite")
    return LedgerJSONResponse(invite_object(row))


async def delete_invite(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_INVITATIONS)
    invite_id = path_id(request, "invite_id", "invite")
    async with acting(services(request).pool, caller.actor) as conn:
        row = await invitations.revoke(conn, caller.workspace_id, invite_id)
    if row is None:
        raise not_found("pending invite")
    return LedgerJSONResponse({"object": "organization.invite.deleted", "id": str(invite_id), "deleted": True})


# ---- projects ----------------------------------------------------------------------------------


def _project_name(value: str) -> str:
    value = check_text(value, "name").strip()
    if not value or any(unicodedata.category(ch) == "Cc" for ch in value):  # C0 and C1 controls, DEL
        raise ValueError("a name needs visible characters and no control characters")
    return value


class ProjectName(BaseModel):
    name: str = Field(min_length=1, max_length=100)

    _clean = field_validator("name")(_project_name)


async def create_project(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_PROJECTS)
    new = await parse_body(request, ProjectName)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await projects.create_project(conn, caller.workspace_id, new.name)
    return LedgerJSONResponse(project_object(row), status_code=201)


async def list_projects(request: Request) -> Response:
    caller = await organization_caller(request)
    limit = limit_of(request)
    archived = request.query_params.get("include_archived", "false").lower() == "true"
    rows = await projects.projects_of(
        services(request).pool, caller.workspace_id, archived=archived, after=cursor(request, "after"), limit=limit + 1
    )
    return LedgerJSONResponse(listed([project_object(r) for r in rows[:limit]], len(rows) > limit))


async def _project(request: Request, caller: Caller) -> projects.Project:
    row = await projects.project(services(request).pool, caller.workspace_id, path_id(request, "project_id", "project"))
    if row is None:
        raise not_found("project")
    return row


async def get_project(request: Request) -> Response:
    caller = await organization_caller(request)
    return LedgerJSONResponse(project_object(await _project(request, caller)))


async def modify_project(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_PROJECTS)
    change = await parse_body(request, ProjectName)
    project = await _project(request, caller)
    async with acting(services(request).pool, caller.actor) as conn:
        row = await projects.rename_project(conn, caller.workspace_id, project["id"], change.name)
    if row is None:
        raise ApiError(400, "An archived project cannot be renamed.", code="project_archived")
    return LedgerJSONResponse(project_object(row))


async def archive_project(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_PROJECTS)
    project = await _project(request, caller)
    if project["is_default"]:
        raise ApiError(400, "The default project cannot be archived.", code="default_project")
    async with acting(services(request).pool, caller.actor) as conn:
        row = await projects.archive_project(conn, caller.workspace_id, project["id"])
    assert row is not None
    return LedgerJSONResponse(project_object(row))


# ---- project API keys (gateway keys) -----------------------------------------------------------


class NewProjectKey(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    expires_at: UtcDatetime | None = None
    # restrictions (null: none): model patterns ('*' any run), provider names, client networks (CIDR)
    allowed_models: list[str] | None = Field(default=None, max_length=50)
    allowed_providers: list[str] | None = Field(default=None, max_length=50)
    allowed_ips: list[str] | None = Field(default=None, max_length=50)


class KeyRestrictionsChange(BaseModel):
    """All three restrictions at once (null: none)."""

    allowed_models: list[str] | None = Field(default=None, max_length=50)
    allowed_providers: list[str] | None = Field(default=None, max_length=50)
    allowed_ips: list[str] | None = Field(default=None, max_length=50)


async def list_project_keys(request: Request) -> Response:
    caller = await organization_caller(request)
    project = await _project(request, caller)
    limit = limit_of(request)
    rows = await gateway_keys.keys_of_project(
        services(request).pool, caller.workspace_id, project["id"], cursor(request, "after"), limit + 1
    )
    return LedgerJSONResponse(listed([api_key_object(r) for r in rows[:limit]], len(rows) > limit))


async def create_project_key(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_KEYS)
    new = await parse_body(request, NewProjectKey)
    project = await _project(request, caller)
    if project["archived_at"] is not None:
        raise ApiError(400, "An archived project takes no new keys.", code="project_archived")
    restrictions = KeyRestrictions(new.allowed_models, new.allowed_providers, new.allowed_ips).checked()
    async with acting(services(request).pool, caller.actor) as conn:
        key = await gateway_keys.create_own_key(conn, caller.workspace_id, new.name, new.expires_at, project["id"])
        if restrictions.any:
            await restrict_key(conn, caller.workspace_id, key.id, restrictions)
    return LedgerJSONResponse(
        {
            "object": "organization.project.api_key",
            "id": str(key.id),
            "name": key.name or "",
            "value": key.key,
            "redacted_value": key.prefix + "...",
            "expires_at": unix(key.expires_at),
            "project_id": str(project["id"]),
            "allowed_models": restrictions.allowed_models,
            "allowed_providers": restrictions.allowed_providers,
            "allowed_ips": restrictions.allowed_ips,
        },
        status_code=201,
    )


async def modify_project_key(request: Request) -> Response:
    """Sets a key's restrictions: owners and admins only (a developer may create a restricted key,
    not lift a restriction)."""
    caller = await organization_caller(request)
    caller.require(P.MANAGE_CONTROLS)
    change = await parse_body(request, KeyRestrictionsChange)
    _, row = await _project_key(request, caller)
    restrictions = KeyRestrictions(change.allowed_models, change.allowed_providers, change.allowed_ips).checked()
    async with acting(services(request).pool, caller.actor) as conn:
        await restrict_key(conn, caller.workspace_id, row["id"], restrictions)
    _, row = await _project_key(request, caller)
    return LedgerJSONResponse(api_key_object(row))


async def _project_key(request: Request, caller: Caller) -> tuple[projects.Project, gateway_keys.KeyInProject]:
    project = await _project(request, caller)
    key_id = path_id(request, "key_id", "API key")
    row = await gateway_keys.key_in_project(services(request).pool, caller.workspace_id, project["id"], key_id)
    if row is None:
        raise not_found("API key")
    return project, row


async def get_project_key(request: Request) -> Response:
    caller = await organization_caller(request)
    _, row = await _project_key(request, caller)
    return LedgerJSONResponse(api_key_object(row))


async def delete_project_key(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_KEYS)
    _, row = await _project_key(request, caller)
    async with acting(services(request).pool, caller.actor) as conn:
        await gateway_keys.revoke_own_key(conn, caller.workspace_id, row["id"])
    return LedgerJSONResponse({"object": "organization.project.api_key.deleted", "id": str(row["id"]), "deleted": True})


# ---- admin keys --------------------------------------------------------------------------------


class NewAdminKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)

    _clean = field_validator("name")(_project_name)


async def create_admin_key(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_ADMIN_KEYS)
    new = await parse_body(request, NewAdminKey)
    async with acting(services(request).pool, caller.actor) as conn:
        made = await admin_keys.create_admin_key(conn, caller.workspace_id, new.name, caller.actor.label)
    return LedgerJSONResponse({**admin_key_object(made.row), "value": made.key}, status_code=201)


async def list_admin_keys(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_ADMIN_KEYS)
    limit = limit_of(request)
    rows = await admin_keys.admin_keys_of(
        services(request).pool, caller.workspace_id, cursor(request, "after"), limit + 1
    )
    return LedgerJSONResponse(listed([admin_key_object(r) for r in rows[:limit]], len(rows) > limit))


async def get_admin_key(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_ADMIN_KEYS)
    row = await admin_keys.admin_key(
        services(request).pool, caller.workspace_id, path_id(request, "key_id", "admin key")
    )
    if row is None:
        raise not_found("admin key")
    return LedgerJSONResponse(admin_key_object(row))


async def delete_admin_key(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.MANAGE_ADMIN_KEYS)
    key_id = path_id(request, "key_id", "admin key")
    async with acting(services(request).pool, caller.actor) as conn:
        deleted = await admin_keys.revoke_admin_key(conn, caller.workspace_id, key_id)
    if not deleted:
        raise not_found("admin key")
    return LedgerJSONResponse({"object": "organization.admin_api_key.deleted", "id": str(key_id), "deleted": True})


# ---- audit log ---------------------------------------------------------------------------------


def _many(request: Request, name: str) -> list[str]:
    values = request.query_params.getlist(name + "[]") + request.query_params.getlist(name)
    if len(values) > 50:
        raise ApiError(400, f"At most 50 values of '{name}[]'.", param=name, code="invalid_parameter")
    return [check_text(v, name)[:200] for v in values]


def _audit_cursor(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 2**63:
        raise ApiError(400, f"'{name}' must be an id from a previous page.", param=name, code="invalid_parameter")
    return int(value)


def _effective(request: Request) -> tuple[datetime | None, datetime | None]:
    since = until = None
    for op in ("gt", "gte", "lt", "lte"):
        value = request.query_params.get(f"effective_at[{op}]")
        if value is None:
            continue
        when = _time(value, f"effective_at[{op}]")
        # rows are stamped to the microsecond: "> t" is ">= t + 1 µs", "<= t" is "< t + 1 µs"
        if op in ("gt", "gte"):
            since = when if op == "gte" else _next_moment(when)
        else:
            until = when if op == "lt" else _next_moment(when)
    return since, until


def _next_moment(when: datetime) -> datetime:
    """The next microsecond (the last one of year 9999 has none: itself)."""
    try:
        return when + timedelta(microseconds=1)
    except OverflowError:
        return when


def _time(value: str, name: str) -> datetime:
    """A unix time (OpenAI's) or an ISO 8601 time."""
    if value.isascii() and value.isdigit() and len(value) <= 11:
        return datetime.fromtimestamp(int(value), UTC)
    return to_utc(value, name)


async def list_audit_logs(request: Request) -> Response:
    caller = await organization_caller(request)
    caller.require(P.READ_AUDIT_LOG)
    since, until = _effective(request)
    limit = limit_of(request)
    rows = await audit.audit_page(
        services(request).pool,
        caller.workspace_id,
        since=since,
        until=until,
        actions=_many(request, "event_types"),
        actor_ids=_many(request, "actor_ids"),
        resource_ids=_many(request, "resource_ids"),
        after=_audit_cursor(request, "after"),
        before=_audit_cursor(request, "before"),
        limit=limit + 1,
    )
    return LedgerJSONResponse(listed([audit_object(r) for r in rows[:limit]], len(rows) > limit))

"""Workspaces and their members (sql 0019). A workspace is a wallet (`user_credits`) with a name
and members; creating one goes through the money layer's create_user, so the money functions
stay the only writers of balances. Call the writers inside `acting` so the audit log names who."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypedDict, cast

from ledger.accounts.roles import Role
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import translate_errors
from ledger.money.accounts import create_self_service_wallet, create_user


class Workspace(TypedDict):
    id: uuid.UUID
    name: str
    kind: str  # personal | team
    created_at: datetime


class Membership(TypedDict):
    id: uuid.UUID
    name: str
    kind: str
    role: Role
    created_at: datetime


class Member(TypedDict):
    id: uuid.UUID  # the person's
    email: str
    name: str | None
    role: Role
    added_at: datetime


async def create_workspace(
    db: Executor,
    name: str,
    owner: uuid.UUID | None,
    *,
    kind: str = "team",
    email: str | None = None,
    self_service: bool = False,
) -> Workspace:
    """A new wallet and its workspace (with its default project), `owner` its first OWNER.
    `self_service`: a person makes it for themselves, so it gets no free allowance (sql 0020)."""
    wallet = await (create_self_service_wallet(db, email) if self_service else create_user(db, email=email))
    if kind == "team":
        row = await db.fetchrow(query("make_team_workspace"), wallet["user_id"], name)
    else:
        row = await db.fetchrow(query("workspace_by_id"), wallet["user_id"])
    if owner is not None:
        await add_member(db, wallet["user_id"], owner, "OWNER")
    return cast(Workspace, dict(row))


async def add_member(db: Executor, workspace_id: uuid.UUID, person_id: uuid.UUID, role: Role) -> Role:
    """Adds the person with `role`; a person already a member keeps the role they have."""
    return cast(Role, await db.fetchval(query("add_workspace_member"), workspace_id, person_id, role))


async def workspace(db: Executor, workspace_id: uuid.UUID) -> Workspace | None:
    row = await db.fetchrow(query("workspace_by_id"), workspace_id)
    return None if row is None else cast(Workspace, dict(row))


async def workspaces_of(db: Executor, person_id: uuid.UUID) -> list[Membership]:
    return [cast(Membership, dict(row)) for row in await db.fetch(query("workspaces_of_person"), person_id)]


async def role_in(db: Executor, workspace_id: uuid.UUID, person_id: uuid.UUID) -> Role | None:
    """The person's role there now: read on every request, so a removal takes effect at once."""
    return cast(Role | None, await db.fetchval(query("role_of_member"), workspace_id, person_id))


async def members(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[Member]:
    return [
        cast(Member, dict(row)) for row in await db.fetch(query("members_of_workspace"), workspace_id, after, limit)
    ]


async def member(db: Executor, workspace_id: uuid.UUID, person_id: uuid.UUID) -> Member | None:
    row = await db.fetchrow(query("member_of_workspace"), workspace_id, person_id)
    return None if row is None else cast(Member, dict(row))


async def change_role(db: Executor, workspace_id: uuid.UUID, person_id: uuid.UUID, role: Role) -> Member | None:
    """None when not a member; LastOwner when it would leave the workspace without an owner."""
    with translate_errors():
        row = await db.fetchrow(query("change_member_role"), workspace_id, person_id, role)
    return None if row is None else cast(Member, dict(row))


async def remove_member(db: Executor, workspace_id: uuid.UUID, person_id: uuid.UUID) -> bool:
    """False when not a member. Their sessions in the workspace end and the gateway keys they made
    there are revoked with the removal, in its transaction: someone who left cannot go on spending
    the team's balance."""
    with translate_errors():
        removed = await db.fetchval(query("remove_member"), workspace_id, person_id)
    if removed is None:
        return False
    await db.fetchval(query("end_member_sessions_in_workspace"), workspace_id, person_id, "removed from the workspace")
    await db.fetchval(query("revoke_keys_of_member"), workspace_id, person_id)
    return True

"""Invitations (seed 004 workspaces_invitations): a token emailed to a person, good once, for one
workspace, until it expires or is revoked; only its hash is stored. Accepting needs a signed-in
person whose email is the invitation's (the token proves they read that mailbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict, cast

from ledger.accounts.roles import Role
from ledger.accounts.tokens import new_token, token_hash
from ledger.accounts.workspaces import add_member
from ledger.db.executor import Executor
from ledger.db.queries import query

INVITE_PREFIX = "inv_"
INVITATION_DAYS = 7


class Invitation(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    invited_by: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewInvitation:
    invitation: Invitation
    token: str  # for the email only: never stored, never answered


class PendingInvitation(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    workspace_name: str
    expires_at: datetime


def status_of(invitation: Invitation, now: datetime | None = None) -> str:
    """OpenAI's invite statuses: accepted, expired, pending (and revoked, ours)."""
    if invitation["accepted_at"] is not None:
        return "accepted"
    if invitation["revoked_at"] is not None:
        return "revoked"
    if invitation["expires_at"] <= (now or datetime.now(UTC)):
        return "expired"
    return "pending"


async def invite(
    db: Executor, workspace_id: uuid.UUID, email: str, role: Role, invited_by: str | None
) -> NewInvitation:
    token = new_token(INVITE_PREFIX)
    expires = datetime.now(UTC) + timedelta(days=INVITATION_DAYS)
    row = await db.fetchrow(
        query("insert_invitation"), workspace_id, email, role, token_hash(token), invited_by, expires
    )
    return NewInvitation(cast(Invitation, dict(row)), token)


async def invitations_of(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[Invitation]:
    rows = await db.fetch(query("invitations_of_workspace"), workspace_id, after, limit)
    return [cast(Invitation, dict(row)) for row in rows]


async def invitation(db: Executor, workspace_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
    row = await db.fetchrow(query("invitation_of_workspace"), workspace_id, invitation_id)
    return None if row is None else cast(Invitation, dict(row))


async def revoke(db: Executor, workspace_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
    row = await db.fetchrow(query("revoke_invitation"), workspace_id, invitation_id)
    return None if row is None else cast(Invitation, dict(row))


async def pending(db: Executor, token: str) -> PendingInvitation | None:
    """The invitation a token names while it can still be accepted (locked in a transaction)."""
    if not token.startswith(INVITE_PREFIX) or len(token) > 100:
        return None
    row = await db.fetchrow(query("invitation_by_token"), token_hash(token))
    return None if row is None else cast(PendingInvitation, dict(row))


async def accept(db: Executor, found: PendingInvitation, person_id: uuid.UUID) -> Role:
    """Joins the person to the invitation's workspace (call in the transaction that found it).
    A person already a member keeps their role. Returns the role they hold."""
    await db.fetchval(query("accept_invitation"), found["id"], person_id)
    return await add_member(db, found["workspace_id"], person_id, found["role"])

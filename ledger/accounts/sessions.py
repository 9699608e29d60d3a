"""Dashboard sessions of people (seed 004 `sessions`): a row per sign-in, found by the SHA-256 of
the random nonce inside the signed session cookie (the cookie holds the nonce; the database only
its hash). A person sees theirs and ends one or all; a password change or reset ends them all, a
removal from a workspace those in it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, cast

from ledger.accounts.tokens import token_hash
from ledger.db.executor import Executor
from ledger.db.queries import query

# How long a session waiting for its second factor lives
MFA_STEP_FOR = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class LiveSession:
    id: uuid.UUID
    person_id: uuid.UUID
    workspace_id: uuid.UUID | None
    mfa_pending: bool
    expires_at: datetime
    email: str


class SessionListed(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID | None
    device: str | None
    ip: str | None
    created_at: datetime
    last_active_at: datetime
    expires_at: datetime


async def open_session(
    db: Executor,
    person_id: uuid.UUID,
    workspace_id: uuid.UUID | None,
    nonce: str,
    device: str | None,
    ip: str | None,
    lifetime: timedelta,
    *,
    mfa_pending: bool,
) -> uuid.UUID:
    return cast(
        uuid.UUID,
        await db.fetchval(
            query("insert_session"),
            person_id,
            workspace_id,
            token_hash(nonce),
            device,
            ip,
            MFA_STEP_FOR if mfa_pending else lifetime,
            mfa_pending,
        ),
    )


async def live_session(db: Executor, nonce: str) -> LiveSession | None:
    row = await db.fetchrow(query("live_session"), token_hash(nonce))
    if row is None:
        return None
    return LiveSession(
        row["id"], row["user_id"], row["workspace_id"], row["mfa_pending"], row["expires_at"], row["email"]
    )


async def sessions_of(db: Executor, person_id: uuid.UUID) -> list[SessionListed]:
    return [cast(SessionListed, dict(row)) for row in await db.fetch(query("sessions_of_person"), person_id)]


async def end_session(db: Executor, person_id: uuid.UUID, session_id: uuid.UUID, reason: str) -> bool:
    return await db.fetchval(query("end_session_of_person"), person_id, session_id, reason) is not None


async def end_sessions(db: Executor, person_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None) -> int:
    return cast(int, await db.fetchval(query("end_sessions_of_person"), person_id, reason, keep))


async def move_to_workspace(db: Executor, session_id: uuid.UUID, workspace_id: uuid.UUID) -> None:
    await db.fetchval(query("set_session_workspace"), session_id, workspace_id)


async def pass_mfa(db: Executor, session_id: uuid.UUID, lifetime: timedelta) -> None:
    await db.fetchval(query("pass_session_mfa"), session_id, lifetime)

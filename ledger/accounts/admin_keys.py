"""Admin keys (`sk-lg-admin-...`): they authenticate the administration API of one workspace and
nothing else (a metered call with one is refused: its shape is not a gateway key's)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, cast

from ledger.accounts.tokens import new_token, token_hash
from ledger.db.executor import Executor
from ledger.db.queries import query

ADMIN_KEY_PREFIX = "sk-lg-admin-"
ADMIN_KEY_SHAPE = re.compile(re.escape(ADMIN_KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")
VISIBLE_CHARS = 16


class AdminKey(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    prefix: str
    name: str | None
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewAdminKey:
    row: AdminKey
    key: str  # shown once


@dataclass(frozen=True, slots=True)
class AdminKeyHolder:
    key_id: uuid.UUID
    workspace_id: uuid.UUID
    prefix: str


async def create_admin_key(
    db: Executor, workspace_id: uuid.UUID, name: str | None, created_by: str | None
) -> NewAdminKey:
    key = new_token(ADMIN_KEY_PREFIX)
    row = await db.fetchrow(
        query("insert_admin_key"), workspace_id, token_hash(key), key[:VISIBLE_CHARS], name, created_by
    )
    return NewAdminKey(cast(AdminKey, dict(row)), key)


async def admin_keys_of(
    db: Executor, workspace_id: uuid.UUID, after: uuid.UUID | None = None, limit: int = 100
) -> list[AdminKey]:
    return [
        cast(AdminKey, dict(row))
        for row in await db.fetch(query("admin_keys_of_workspace"), workspace_id, after, limit)
    ]


async def admin_key(db: Executor, workspace_id: uuid.UUID, key_id: uuid.UUID) -> AdminKey | None:
    row = await db.fetchrow(query("admin_key_of_workspace"), workspace_id, key_id)
    return None if row is None else cast(AdminKey, dict(row))


async def revoke_admin_key(db: Executor, workspace_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    return await db.fetchval(query("revoke_admin_key"), workspace_id, key_id) is not None


async def authenticate_admin_key(db: Executor, key: str) -> AdminKeyHolder | None:
    """None for anything that is not a live admin key (a malformed one without asking the database)."""
    if not ADMIN_KEY_SHAPE.fullmatch(key):
        return None
    row = await db.fetchrow(query("authenticate_admin_key"), token_hash(key))
    return None if row is None else AdminKeyHolder(row["id"], row["workspace_id"], row["prefix"])

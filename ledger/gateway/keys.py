"""Gateway API keys (seed 000): random, shown once, stored as a SHA-256 hash with a prefix.

A key has 256 bits of randomness, so a plain SHA-256 is as safe to store as a slow password
hash and lets a request find its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, cast

import asyncpg

from ledger.db.executor import Connection, Executor, one_connection
from ledger.db.queries import query
from ledger.errors import ExpiryPassed, InvalidId, TooManyKeys, UnknownUser, translate_errors
from ledger.money.accounts import lock_account
from ledger.money.values import to_uuid

KEY_PREFIX = "sk-lg-"
VISIBLE_CHARS = 12  # of the key, kept as `prefix` so people can tell keys apart
# The most usable (active, unexpired) keys a user may hold when asking for another themselves: a
# person needs a handful (one per app or machine), a stolen key must not mint thousands.
# Operators (the CLI, the admin API) are not bound by it.
MAX_USABLE_KEYS = 25


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# What create_key makes: the prefix and token_urlsafe(32) (43 URL-safe base64 characters). Anything
# else can be refused without asking the database.
KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class NewKey:
    id: uuid.UUID
    key: str  # the only time the full key exists outside its owner's hands
    prefix: str
    name: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: uuid.UUID
    user_id: uuid.UUID
    power_level: str
    # a personal workspace's key may manage its wallet (the owner JSON endpoints); a team's may not
    personal: bool = True


async def create_key(
    db: Executor,
    user_id: object,
    name: str | None = None,
    expires_at: datetime | None = None,
    project_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
) -> NewKey:
    """A new key of the wallet `user_id`, in `project_id` (the workspace's default project when
    None; ProjectNotUsable when archived or another workspace's)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[:VISIBLE_CHARS]
    with translate_errors():
        key_id = await db.fetchval(
            query("insert_gateway_key"),
            to_uuid(user_id, "user_id"),
            hash_key(key),
            prefix,
            name,
            expires_at,
            project_id,
            created_by,
        )
    if key_id is None:
        raise UnknownUser(f"unknown user {user_id}")
    return NewKey(key_id, key, prefix, name, expires_at)


async def authenticate(db: Executor, key: str) -> KeyOwner | None:
    if not KEY_SHAPE.fullmatch(key):
        return None
    row = await db.fetchrow(query("authenticate_gateway_key"), hash_key(key))
    return None if row is None else KeyOwner(row["id"], row["user_id"], row["power_level"], row["personal"])


async def session_owner(db: Executor, key_id: object, user_id: object, nonce: str) -> KeyOwner | None:
    """The owner of a dashboard session signed in with key `key_id`, while that key is still good
    and the session (`nonce`) was not signed out of."""
    row = await db.fetchrow(
        query("gateway_key_of_session"), to_uuid(key_id, "key_id"), to_uuid(user_id, "user_id"), nonce
    )
    return None if row is None else KeyOwner(row["id"], row["user_id"], row["power_level"], row["personal"])


async def revoke_key(db: Executor, key_id: object) -> bool:
    """Deactivate a key; False when there is no such active key."""
    revoked = await db.fetchval(query("revoke_gateway_key"), to_uuid(key_id, "key_id"))
    return revoked is not None


class KeyListed(TypedDict):
    """sql/queries/find_gateway_keys.sql: a gateway key as operators see it (never its hash)."""

    id: uuid.UUID
    user_id: uuid.UUID
    prefix: str
    name: str | None
    is_active: bool
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def list_keys(db: Executor, *, user_id: object | None = None, prefix: str | None = None) -> list[KeyListed]:
    """Keys (never their hashes), filtered by owner and/or by the start of the key people can see."""
    rows = await db.fetch(
        query("find_gateway_keys"),
        None if user_id is None else to_uuid(user_id, "user_id"),
        prefix,
        VISIBLE_CHARS,
    )
    return [cast(KeyListed, dict(r)) for r in rows]


class OwnKey(TypedDict):
    """A gateway key as its owner sees it: find_gateway_keys' columns but the owner's id."""

    id: uuid.UUID
    prefix: str
    name: str | None
    is_active: bool
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class WorkspaceKey(OwnKey):
    """sql/queries/gateway_keys_of_workspace.sql: a key as its workspace's dashboard shows it."""

    project_id: uuid.UUID
    created_by: uuid.UUID | None  # the person who made it (None: a key session, the operator, an admin key)


async def keys_of_workspace(db: Executor, workspace_id: uuid.UUID) -> list[WorkspaceKey]:
    return [cast(WorkspaceKey, dict(row)) for row in await db.fetch(query("gateway_keys_of_workspace"), workspace_id)]


async def keys_of_owner(db: Executor, user_id: uuid.UUID) -> list[OwnKey]:
    """The user's keys, active and revoked, newest first (never their hashes)."""
    rows = await list_keys(db, user_id=user_id)
    shown = [{name: value for name, value in row.items() if name != "user_id"} for row in reversed(rows)]
    return cast(list[OwnKey], shown)


async def create_own_key(
    db: asyncpg.Pool | Connection,
    user_id: uuid.UUID,
    name: str | None = None,
    expires_at: datetime | None = None,
    project_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
) -> NewKey:
    """A key the user asks for themselves: refused (TooManyKeys) while they hold MAX_USABLE_KEYS
    usable ones, or (ExpiryPassed) when it would expire at or before the database's now. Given a
    connection in a transaction (ledger.accounts.actor.acting), it runs inside that transaction."""
    async with one_connection(db) as conn, conn.transaction():
        # the account's lock, taken first as by every writer, makes count-then-insert one step:
        # two requests at once cannot both see room for one more
        await lock_account(conn, user_id)
        # an aggregate: always one row
        limits = cast(asyncpg.Record, await conn.fetchrow(query("own_key_limits"), user_id, expires_at))
        if limits["expiry_passed"]:
            raise ExpiryPassed("expires_at must be in the future.")
        if limits["usable_keys"] >= MAX_USABLE_KEYS:
            raise TooManyKeys(
                f"You already have {limits['usable_keys']} usable keys, the most one account may hold.",
                hint="revoke one you no longer use first: DELETE /v1/keys/{id}",
            )
        return await create_key(conn, user_id, name, expires_at, project_id, created_by)


async def revoke_own_key(db: Executor, user_id: uuid.UUID, key_id: object) -> bool:
    """Revoke one of the user's own active keys (the calling one included); False when the id is
    not a key of theirs that is still active, or is no id at all: all look alike to a caller."""
    try:
        own_id = to_uuid(key_id, "key_id")
    except InvalidId:
        return False
    return await db.fetchval(query("revoke_own_gateway_key"), own_id, user_id) is not None


class KeyGate:
    """Checks a request's key from its headers alone, before its body is read: work done for a
    caller with no valid key is work an attacker gets for free (a 30 MiB body parsed for nobody).

    A key of the wrong shape is refused without SQL. A key seen valid is remembered for `ttl`
    seconds (at most `size` of them, the least recently seen forgotten first), so a busy key costs
    no extra round trip. This gate only decides whether the body is worth reading: the metered
    request's own SQL call (begin_llm_request) still authenticates every request, so a key revoked
    within the TTL is refused there, before anything is held or sent upstream."""

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._seen: OrderedDict[str, float] = OrderedDict()  # key hash -> when it was last found valid

    async def admits(self, db: Executor, key: str) -> bool:
        if not KEY_SHAPE.fullmatch(key):
            return False
        digest = hash_key(key)
        now = time.monotonic()
        seen = self._seen.get(digest)
        if seen is not None and now - seen < self.ttl:
            self._seen.move_to_end(digest)
            return True
        if await db.fetchrow(query("authenticate_gateway_key"), digest) is None:
            self._seen.pop(digest, None)
            return False
        self._seen[digest] = now
        self._seen.move_to_end(digest)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


class KeyInProject(TypedDict):
    """sql/queries/gateway_keys_of_project.sql: a project's key as its workspace's admins see it."""

    id: uuid.UUID
    project_id: uuid.UUID
    prefix: str
    name: str | None
    created_by: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    allowed_models: list[str] | None
    allowed_providers: list[str] | None
    allowed_ips: list[str] | None


async def keys_of_project(
    db: Executor, workspace_id: uuid.UUID, project_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[KeyInProject]:
    rows = await db.fetch(query("gateway_keys_of_project"), workspace_id, project_id, after, limit)
    return [cast(KeyInProject, dict(row)) for row in rows]


async def key_in_project(
    db: Executor, workspace_id: uuid.UUID, project_id: uuid.UUID, key_id: uuid.UUID
) -> KeyInProject | None:
    row = await db.fetchrow(query("gateway_key_in_project"), workspace_id, project_id, key_id)
    return None if row is None else cast(KeyInProject, dict(row))

"""Gateway API keys (seed 000): random, shown once, stored as a SHA-256 hash with a prefix.

A key has 256 bits of randomness, so a plain SHA-256 is as safe to store as a slow password
hash and lets a request find its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, cast

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import UnknownUser, translate_errors
from ledger.money.values import to_uuid

KEY_PREFIX = "sk-lg-"
VISIBLE_CHARS = 12  # of the key, kept as `prefix` so people can tell keys apart


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


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


async def create_key(
    db: Executor, user_id: object, name: str | None = None, expires_at: datetime | None = None
) -> NewKey:
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
        )
    if key_id is None:
        raise UnknownUser(f"unknown user {user_id}")
    return NewKey(key_id, key, prefix, name, expires_at)


async def authenticate(db: Executor, key: str) -> KeyOwner | None:
    if not key.startswith(KEY_PREFIX):
        return None
    row = await db.fetchrow(query("authenticate_gateway_key"), hash_key(key))
    return None if row is None else KeyOwner(row["id"], row["user_id"], row["power_level"])


async def session_owner(db: Executor, key_id: object, user_id: object) -> KeyOwner | None:
    """The owner of a dashboard session signed in with key `key_id`, while that key is still good."""
    row = await db.fetchrow(query("gateway_key_of_session"), to_uuid(key_id, "key_id"), to_uuid(user_id, "user_id"))
    return None if row is None else KeyOwner(row["id"], row["user_id"], row["power_level"])


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

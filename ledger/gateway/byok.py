"""BYOK: users' own provider keys, AES-256-GCM encrypted at rest.

The ciphertext is bound to its owner and provider (associated data), so a row copied to another
user or provider fails to decrypt instead of lending its key. Only a hint (the last 4 characters)
is ever shown again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidArgument, NameTaken, TooManyProviderKeys, translate_errors
from ledger.money.accounts import lock_account
from ledger.money.values import to_uuid

log = logging.getLogger("ledger.byok")

NONCE_BYTES = 12
# What a provider key may contain: visible ASCII, as an HTTP header value carries it.
KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")
# The most active keys a user may hold, over all providers. A request uses one key per provider
# (the default, else the newest), so beyond a few per provider (one in use, one being rotated in)
# keys are only leftovers; 20 leaves room for that on every provider the service routes to, while a
# stolen gateway key cannot fill the table (400 adds at once once left one user 462 keys).
MAX_ACTIVE_KEYS = 20


class KeyCipher:
    def __init__(self, encoded_key: str) -> None:
        try:
            key = base64.b64decode(encoded_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("LEDGER_ENCRYPTION_KEY must be base64") from None
        if len(key) != 32:
            raise ValueError("LEDGER_ENCRYPTION_KEY must be 32 bytes (base64 of `openssl rand 32`)")
        self._aead = AESGCM(key)

    @staticmethod
    def _associated(user_id: uuid.UUID, provider: str) -> bytes:
        return f"{user_id}:{provider}".encode()

    def encrypt(self, plaintext: str, user_id: uuid.UUID, provider: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), self._associated(user_id, provider))

    def decrypt(self, blob: bytes, user_id: uuid.UUID, provider: str) -> str:
        try:
            plain = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._associated(user_id, provider))
        except InvalidTag:
            raise ValueError("a stored provider key does not decrypt under LEDGER_ENCRYPTION_KEY") from None
        return plain.decode()


@dataclass(frozen=True, slots=True)
class ProviderKey:
    id: uuid.UUID
    provider: str
    api_key: str


class ProviderKeyRow(TypedDict):
    """A BYOK key as its owner sees it: public columns only, never the ciphertext."""

    id: uuid.UUID
    provider: str
    key_name: str
    key_hint: str | None
    is_default: bool
    is_active: bool
    last_used_at: datetime | None
    usage_count_this_month: int
    created_at: datetime


async def add_key(
    pool: asyncpg.Pool,
    cipher: KeyCipher,
    user_id: object,
    provider: str,
    api_key: str,
    key_name: str | None = None,
    is_default: bool = True,
) -> ProviderKeyRow:
    """Store a key; the user's previous default for that provider stops being the default. Refused
    (TooManyProviderKeys) while the user holds MAX_ACTIVE_KEYS active keys."""
    owner = to_uuid(user_id, "user_id")
    if not provider or not api_key.strip():
        raise InvalidArgument("provider and api_key are required")
    api_key = api_key.strip()
    if not KEY_CHARACTERS.fullmatch(api_key):
        # it becomes an Authorization header on every request to the provider: a character a header
        # cannot carry would fail each of the user's requests instead of this one
        raise InvalidArgument(
            "api_key must be printable ASCII with no spaces or control characters",
            hint="Paste the key exactly as the provider shows it.",
        )
    blob = cipher.encrypt(api_key, owner, provider)
    hint = "..." + api_key[-4:]
    name = key_name or f"{provider} key"
    async with pool.acquire() as conn, conn.transaction():
        # the account's lock (which also refuses an unknown user), taken first as by every writer,
        # makes count-then-insert one step: two adds at once cannot both see room for one more
        await lock_account(conn, owner)
        active = await conn.fetchval(query("active_provider_keys_of_user"), owner)
        if active >= MAX_ACTIVE_KEYS:
            raise TooManyProviderKeys(
                f"You already have {active} active provider keys, the most one account may hold.",
                hint="delete one you no longer use first: DELETE /v1/provider-keys/{id}",
            )
        try:
            row = await _insert_key(conn, owner, provider, name, blob, hint, is_default)
        except asyncpg.UniqueViolationError:
            raise NameTaken(
                f"you already have an active {provider} key named {name!r}",
                hint="Choose another name, or delete that key first.",
            ) from None
    return cast(ProviderKeyRow, dict(row))


async def _insert_key(
    db: Executor, owner: uuid.UUID, provider: str, key_name: str, blob: bytes, hint: str, is_default: bool
) -> Any:
    with translate_errors():
        return await db.fetchrow(
            query("insert_provider_key"),
            owner,
            provider,
            key_name,
            blob,
            hint,
            is_default,
        )


async def list_keys(db: Executor, user_id: object) -> list[ProviderKeyRow]:
    rows = await db.fetch(query("provider_keys_of_user"), to_uuid(user_id, "user_id"))
    return [cast(ProviderKeyRow, dict(r)) for r in rows]


async def deactivate_key(db: Executor, user_id: object, key_id: object) -> bool:
    """Only the owner's own key; False when there is none (also when it is someone else's)."""
    done = await db.fetchval(
        query("deactivate_provider_key"),
        to_uuid(key_id, "key_id"),
        to_uuid(user_id, "user_id"),
    )
    return done is not None


def usable_keys(cipher: KeyCipher, user_id: uuid.UUID, rows: list[dict[str, Any]]) -> dict[str, ProviderKey]:
    """The key to use per provider, decrypted, from begin_llm_request's `own_keys` (one per
    provider: the default one, else the newest active one)."""
    keys = {}
    for r in rows:
        plain = cipher.decrypt(base64.b64decode(r["encrypted_key"]), user_id, r["provider"])
        if not KEY_CHARACTERS.fullmatch(plain):
            # stored before keys were checked: it cannot be sent as a header, so the platform's
            # key serves that provider instead of every request of this user failing
            log.warning("BYOK key %s cannot be sent in a header; skipped", r["id"])
            continue
        keys[r["provider"]] = ProviderKey(uuid.UUID(r["id"]), r["provider"], plain)
    return keys

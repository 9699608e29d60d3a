"""BYOK: users' own provider keys, AES-256-GCM encrypted at rest.

The ciphertext is bound to its owner and provider (associated data), so a row copied to another
user or provider fails to decrypt instead of lending its key. Only a hint (the last 4 characters)
is ever shown again.

Rotating the encryption key (docs/key-rotation.md): LEDGER_ENCRYPTION_KEY is the key that
encrypts; LEDGER_ENCRYPTION_KEYS_OLD lists keys that still decrypt, so both work while
`ledger byok rotate` re-encrypts every stored key under the new one. A stored key that decrypts
under none of them is skipped on the request path (the platform's key serves its provider) and
shown to its owner as needing re-entry: it is never a 500.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.db.executor import Connection, Executor, one_connection
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


def _aead_of(encoded_key: str, setting: str) -> AESGCM:
    try:
        key = base64.b64decode(encoded_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{setting} must be base64") from None
    if len(key) != 32:
        raise ValueError(f"{setting} must be 32 bytes (base64 of `openssl rand 32`)")
    return AESGCM(key)


class KeyCipher:
    """Encrypts with the current key; decrypts with the current key, then each old one (a
    MultiFernet-like ring, so a key can be rotated without a moment when stored keys are unread)."""

    def __init__(self, encoded_key: str, old_keys: Sequence[str] = ()) -> None:
        self._aead = _aead_of(encoded_key, "LEDGER_ENCRYPTION_KEY")
        self._old = [_aead_of(old, "each of LEDGER_ENCRYPTION_KEYS_OLD") for old in old_keys if old.strip()]

    @staticmethod
    def _associated(user_id: uuid.UUID, provider: str) -> bytes:
        return f"{user_id}:{provider}".encode()

    def encrypt(self, plaintext: str, user_id: uuid.UUID, provider: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), self._associated(user_id, provider))

    def decrypt(self, blob: bytes, user_id: uuid.UUID, provider: str) -> str:
        """The plaintext, under the current key or an old one; ValueError under none."""
        return self.open(blob, user_id, provider)[0]

    def open(self, blob: bytes, user_id: uuid.UUID, provider: str) -> tuple[str, bool]:
        """(the plaintext, whether it was under the current key); ValueError under no key."""
        associated = self._associated(user_id, provider)
        for index, aead in enumerate([self._aead, *self._old]):
            try:
                plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
            except (InvalidTag, ValueError):  # ValueError: a blob too short to hold a nonce and tag
                continue
            return plain.decode(), index == 0
        raise ValueError("a stored provider key does not decrypt under LEDGER_ENCRYPTION_KEY or the old keys")

    def readable(self, blob: bytes, user_id: uuid.UUID, provider: str) -> bool:
        try:
            self.open(blob, user_id, provider)
        except ValueError:
            return False
        return True


def cipher_of_settings(encryption_key: str | None, old_keys: str | None) -> KeyCipher | None:
    """The cipher the settings describe: None (BYOK off) without LEDGER_ENCRYPTION_KEY;
    LEDGER_ENCRYPTION_KEYS_OLD is a comma-separated list."""
    if encryption_key is None:
        return None
    return KeyCipher(encryption_key, (old_keys or "").split(","))


@dataclass(frozen=True, slots=True)
class ProviderKey:
    id: uuid.UUID
    provider: str
    api_key: str


KeyStatus = Literal["active", "needs_reentry"]


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


class ProviderKeyListed(ProviderKeyRow):
    """`status`: needs_reentry when the key no longer decrypts (the encryption key changed without
    its old key kept readable): requests then use the platform's key for that provider."""

    status: KeyStatus


async def add_key(
    pool: asyncpg.Pool | Connection,
    cipher: KeyCipher,
    user_id: object,
    provider: str,
    api_key: str,
    key_name: str | None = None,
    is_default: bool = True,
) -> ProviderKeyListed:
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
    async with one_connection(pool) as conn, conn.transaction():
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
    return cast(ProviderKeyListed, {**dict(row), "status": "active"})


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


async def list_keys(db: Executor, cipher: KeyCipher | None, user_id: object) -> list[ProviderKeyListed]:
    """The owner's active keys, each with its status (whether it still decrypts: the ciphertexts
    are read to tell, and never returned)."""
    owner = to_uuid(user_id, "user_id")
    blobs = {
        r["id"]: bytes(r["encrypted_key"]) for r in await db.fetch(query("provider_key_ciphertexts_of_user"), owner)
    }
    listed = []
    for row in await db.fetch(query("provider_keys_of_user"), owner):
        blob = blobs.get(row["id"])
        readable = cipher is not None and blob is not None and cipher.readable(blob, owner, row["provider"])
        listed.append(cast(ProviderKeyListed, {**dict(row), "status": "active" if readable else "needs_reentry"}))
    return listed


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
        try:
            plain = cipher.decrypt(base64.b64decode(r["encrypted_key"]), user_id, r["provider"])
        except ValueError:
            # the encryption key changed and this key's old one is not kept readable: the
            # platform's key serves that provider, and its owner sees the key as needing re-entry
            log.warning("BYOK key %s does not decrypt under the configured keys; skipped", r["id"])
            continue
        if not KEY_CHARACTERS.fullmatch(plain):
            # stored before keys were checked: it cannot be sent as a header, so the platform's
            # key serves that provider instead of every request of this user failing
            log.warning("BYOK key %s cannot be sent in a header; skipped", r["id"])
            continue
        keys[r["provider"]] = ProviderKey(uuid.UUID(r["id"]), r["provider"], plain)
    return keys


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int  # re-encrypted under the current key now
    current: int  # under the current key already (rotated before, or stored since)
    unreadable: int  # under no configured key: their owners must enter them again


async def rotate_keys(pool: asyncpg.Pool, cipher: KeyCipher, batch: int = 500) -> RotationReport:
    """Re-encrypts every stored provider key that is under an old key with the current one, once:
    a key under the current key already is left as it is, so running it again changes nothing.
    Each row is replaced only if it is still the ciphertext that was read (a key deleted or
    replaced meanwhile is left alone). Plaintexts never leave this function."""
    rotated = current = unreadable = 0
    after = uuid.UUID(int=0)
    while True:
        rows = await pool.fetch(query("provider_key_ciphertexts_after"), after, batch)
        if not rows:
            return RotationReport(rotated, current, unreadable)
        for row in rows:
            blob, owner, provider = bytes(row["encrypted_key"]), row["user_id"], row["provider"]
            try:
                plain, under_current = cipher.open(blob, owner, provider)
            except ValueError:
                unreadable += 1
                continue
            if under_current:
                current += 1
                continue
            replaced = await pool.fetchval(
                query("replace_provider_key_ciphertext"), row["id"], blob, cipher.encrypt(plain, owner, provider)
            )
            rotated += replaced is not None
        after = rows[-1]["id"]

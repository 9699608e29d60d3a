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
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.db.executor import Executor
from ledger.errors import InvalidArgument, NameTaken, UnknownUser, translate_errors
from ledger.money.values import to_uuid

log = logging.getLogger("ledger.byok")

NONCE_BYTES = 12
# What a provider key may contain: visible ASCII, as an HTTP header value carries it.
KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


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


PUBLIC_COLUMNS = (
    "id, provider, key_name, key_hint, is_default, is_active, last_used_at, usage_count_this_month, created_at"
)


async def add_key(
    db: Executor,
    cipher: KeyCipher,
    user_id: object,
    provider: str,
    api_key: str,
    key_name: str | None = None,
    is_default: bool = True,
) -> dict[str, Any]:
    """Store a key; the user's previous default for that provider stops being the default."""
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
    try:
        row = await _insert_key(db, owner, provider, key_name or f"{provider} key", blob, hint, is_default)
    except asyncpg.UniqueViolationError:
        raise NameTaken(
            f"you already have an active {provider} key named {key_name or f'{provider} key'!r}",
            hint="Choose another name, or delete that key first.",
        ) from None
    if row is None:
        raise UnknownUser(f"unknown user {user_id}")
    return dict(row)


async def _insert_key(
    db: Executor, owner: uuid.UUID, provider: str, key_name: str, blob: bytes, hint: str, is_default: bool
) -> Any:
    with translate_errors():
        return await db.fetchrow(
            f"""
            WITH cleared AS (
                UPDATE user_provider_keys SET is_default = false, updated_at = now()
                 WHERE $6 AND user_id = $1 AND provider = $2 AND is_default
            )
            INSERT INTO user_provider_keys (user_id, provider, key_name, encrypted_key, key_hint, is_default)
            SELECT user_id, $2, $3, $4, $5, $6 FROM user_credits WHERE user_id = $1
            RETURNING {PUBLIC_COLUMNS}
            """,  # noqa: S608 - the interpolated text is a constant column list
            owner,
            provider,
            key_name,
            blob,
            hint,
            is_default,
        )


async def list_keys(db: Executor, user_id: object) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {PUBLIC_COLUMNS} FROM user_provider_keys WHERE user_id = $1 AND is_active"  # noqa: S608
        " ORDER BY is_default DESC, provider, created_at",
        to_uuid(user_id, "user_id"),
    )
    return [dict(r) for r in rows]


async def deactivate_key(db: Executor, user_id: object, key_id: object) -> bool:
    """Only the owner's own key; False when there is none (also when it is someone else's)."""
    done = await db.fetchval(
        "UPDATE user_provider_keys SET is_active = false, is_default = false, updated_at = now()"
        " WHERE id = $1 AND user_id = $2 AND is_active RETURNING id",
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

"""Re-encrypting stored secrets (people's TOTP secrets here; notification channels' targets use the
same loop) under the current LEDGER_ENCRYPTION_KEY, as `ledger byok rotate` does for provider keys
(docs/key-rotation.md): run with the old key in LEDGER_ENCRYPTION_KEYS_OLD, then drop it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from ledger.accounts.people import TOTP_PURPOSE
from ledger.db.queries import query


class RingBox(Protocol):
    """ledger.gateway.byok.KeyCipher: opens under the current key or an old one."""

    def open(self, blob: bytes, user_id: uuid.UUID, provider: str) -> tuple[str, bool]: ...

    def encrypt(self, plaintext: str, user_id: uuid.UUID, provider: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SecretRotation:
    rotated: int
    current: int
    unreadable: int


async def rotate_column(
    pool: asyncpg.Pool, box: RingBox, purpose: str, rows_after: str, replace: str, column: str, batch: int = 500
) -> SecretRotation:
    """Re-encrypts one encrypted column under the current key, once per row (running it again
    changes nothing); a row changed meanwhile is left alone. `rows_after` is a statement of
    (id, column) after an id, at most a batch; `replace` one that swaps ciphertext $2 for $3 on
    row $1 only if it is still $2 (both from sql/queries). Each ciphertext is bound to its row's id and `purpose`.
    Plaintexts never leave this function."""
    rotated = current = unreadable = 0
    after = uuid.UUID(int=0)
    while rows := await pool.fetch(rows_after, after, batch):
        for row in rows:
            blob, owner = bytes(row[column]), row["id"]
            try:
                plain, under_current = box.open(blob, owner, purpose)
            except ValueError:
                unreadable += 1
                continue
            if under_current:
                current += 1
                continue
            rotated += await pool.fetchval(replace, owner, blob, box.encrypt(plain, owner, purpose)) is not None
        after = rows[-1]["id"]
    return SecretRotation(rotated, current, unreadable)


async def rotate_totp_secrets(pool: asyncpg.Pool, box: RingBox, batch: int = 500) -> SecretRotation:
    """People's TOTP secrets under an old key, re-encrypted under the current one."""
    rows_after, replace = query("totp_ciphertexts_after"), query("replace_totp_ciphertext")
    return await rotate_column(pool, box, TOTP_PURPOSE, rows_after, replace, "mfa_secret_encrypted", batch)

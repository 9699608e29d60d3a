"""Re-encrypting people's TOTP secrets under the current LEDGER_ENCRYPTION_KEY, as `ledger byok
rotate` does for provider keys (docs/key-rotation.md): run with the old key in
LEDGER_ENCRYPTION_KEYS_OLD, then drop it."""

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


async def rotate_totp_secrets(pool: asyncpg.Pool, box: RingBox, batch: int = 500) -> SecretRotation:
    """Each secret under an old key is re-encrypted under the current one, once (running it again
    changes nothing); a row changed meanwhile is left alone. Plaintexts never leave this function."""
    rotated = current = unreadable = 0
    after = uuid.UUID(int=0)
    while True:
        rows = await pool.fetch(query("totp_ciphertexts_after"), after, batch)
        if not rows:
            return SecretRotation(rotated, current, unreadable)
        for row in rows:
            blob, person = bytes(row["mfa_secret_encrypted"]), row["id"]
            try:
                plain, under_current = box.open(blob, person, TOTP_PURPOSE)
            except ValueError:
                unreadable += 1
                continue
            if under_current:
                current += 1
                continue
            replaced = await pool.fetchval(
                query("replace_totp_ciphertext"), person, blob, box.encrypt(plain, person, TOTP_PURPOSE)
            )
            rotated += replaced is not None
        after = rows[-1]["id"]

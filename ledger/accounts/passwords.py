"""Passwords: argon2id (argon2-cffi's defaults), hashed and checked off the event loop. A sign-in
for an unknown email checks against a dummy hash, so it spends the same time as a wrong password."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile
MIN_CHARS = 10
MAX_CHARS = 1024
_DUMMY_HASH = HASHER.hash("not a password anyone has: the dummy for unknown emails")


def password_problem(plain: str) -> str | None:
    """What is wrong with a new password, in words a person can act on; None when it will do."""
    if len(plain) < MIN_CHARS:
        return f"A password needs at least {MIN_CHARS} characters."
    if len(plain) > MAX_CHARS:
        return f"A password may have at most {MAX_CHARS} characters."
    if "\x00" in plain:
        return "A password cannot hold a NUL character."
    return None


def hash_password(plain: str) -> str:
    return HASHER.hash(plain)


def verify_password(stored_hash: str, plain: str) -> bool:
    """False on a mismatch or a malformed hash; never raises."""
    try:
        return HASHER.verify(stored_hash, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_against_nothing(plain: str) -> None:
    verify_password(_DUMMY_HASH, plain)


async def hash_password_async(plain: str) -> str:
    return await asyncio.to_thread(hash_password, plain)


async def verify_password_async(stored_hash: str, plain: str) -> bool:
    return await asyncio.to_thread(verify_password, stored_hash, plain)


async def verify_against_nothing_async(plain: str) -> None:
    await asyncio.to_thread(verify_against_nothing, plain)

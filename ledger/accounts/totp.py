"""TOTP two-factor (RFC 6238, 30-second steps, 6 digits) with pyotp, and one-time backup codes."""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp

STEP_SECONDS = 30
BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by people


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def totp_ok(secret: str, code: str, now: float | None = None, last_used_step: int | None = None) -> int | None:
    """The time step the code belongs to (this one or one either side, for clocks a little off),
    or None. A step at or before `last_used_step` is refused: a code works once."""
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    at = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    step_now = int(at // STEP_SECONDS)
    for step in (step_now, step_now - 1, step_now + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def normalise_backup_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").strip().lower()


def new_backup_codes(n: int = 10) -> list[str]:
    """Codes like `k7dm-x3qp`: 8 characters of a 31-letter alphabet, about 40 bits each."""
    codes: set[str] = set()
    while len(codes) < n:
        raw = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(8))
        codes.add(f"{raw[:4]}-{raw[4:]}")
    return sorted(codes)


def hash_backup_code(code: str) -> str:
    """SHA-256: a backup code is random, one-time and tried only behind the sign-in lockout, so
    a slow hash would buy nothing."""
    return hashlib.sha256(normalise_backup_code(code).encode()).hexdigest()

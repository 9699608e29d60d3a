"""One-time tokens (email verification, password reset, invitations, admin keys, sessions): 256
random bits shown once; the database keeps only their SHA-256, which is safe for a secret with
that much entropy and lets one indexed lookup find it."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

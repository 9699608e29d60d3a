"""Browser sessions of the dashboards: a signed cookie that names who signed in, never the secret
they signed in with, and the CSRF token of its forms.

A cookie is `<payload>.<signature>`: the payload is base64url JSON (kind, subject, user, expiry,
nonce); the signature is HMAC-SHA256 over it with the service's session secret. Nothing in it is
secret, and nothing in it can be changed without the secret. Each page view checks the subject is
still good (the gateway key still active, the admin token unchanged), so revoking a key or rotating
the admin token ends the sessions made with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal

Kind = Literal["user", "admin"]

# A cookie longer than this is not ours: refused before any decoding
MAX_COOKIE_CHARS = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    kind: Kind
    # the gateway key's id (user sessions) or the admin token's fingerprint (admin sessions)
    subject: str
    user_id: str | None
    expires_at: int
    nonce: str


class SessionSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must have at least 32 bytes")
        self._key = hmac.new(secret, b"ledger dashboard sessions v1", hashlib.sha256).digest()

    def _sign(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{text}".encode(), hashlib.sha256).digest())

    def issue(self, kind: Kind, subject: str, user_id: str | None, ttl_seconds: int, now: float | None = None) -> str:
        payload = {
            "k": kind,
            "s": subject,
            "u": user_id,
            "e": int(now if now is not None else time.time()) + ttl_seconds,
            "n": secrets.token_urlsafe(16),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign('cookie', body)}"

    def read(self, cookie: str | None, kind: Kind, now: float | None = None) -> Session | None:
        """The session the cookie holds, if this service signed it for `kind` and it has not expired."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        body, _, signature = cookie.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign("cookie", body).encode()):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(payload, dict) or payload.get("k") != kind:
            return None
        expires_at, subject, user_id, nonce = payload.get("e"), payload.get("s"), payload.get("u"), payload.get("n")
        if not isinstance(expires_at, int) or expires_at <= (now if now is not None else time.time()):
            return None
        if not isinstance(subject, str) or not isinstance(nonce, str):
            return None
        if user_id is not None and not isinstance(user_id, str):
            return None
        return Session(kind, subject, user_id, expires_at, nonce)

    def csrf_token(self, nonce: str) -> str:
        """The token every form of a session carries: only pages of this session can know it."""
        return self._sign("csrf", nonce)

    def csrf_ok(self, nonce: str, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.csrf_token(nonce).encode())

    def fingerprint(self, secret: str) -> str:
        """What an admin session keeps of the admin token: it changes when the token does."""
        return self._sign("admin-token", secret)[:22]

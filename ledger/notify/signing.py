"""Standard Webhooks signatures (https://www.standardwebhooks.com): webhook-id, webhook-timestamp
and webhook-signature, signed with each secret that still signs (after a rotation, the new and
the previous, space-separated: a receiver holding either verifies)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """A new signing secret as receivers paste it into their verifier: whsec_ and 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(msg_id: str, sent_at: datetime, body: bytes, signing_secrets: Sequence[str]) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(msg_id, sent_at, body) for secret in signing_secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }

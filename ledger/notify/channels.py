"""Notification channels (seed 004): where alert events go. A channel's target (an email address,
a Slack, Discord or Microsoft Teams incoming-webhook URL, a PagerDuty Events API v2 routing key, or
a webhook URL with its own signing secret) is stored encrypted: chat webhook URLs are secrets. A
channel is used only once verified: its test message carries a code, entered back within a day."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict, cast, get_args
from urllib.parse import urlsplit

import asyncpg

from ledger.accounts import audit
from ledger.accounts.people import SecretBox
from ledger.accounts.secret_rotation import RingBox, SecretRotation, rotate_column
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidWebhook, TooManyControls, translate_errors
from ledger.notify.signing import new_secret
from ledger.notify.targets import checked_url, refuse_private

ChannelType = Literal["email", "slack", "discord", "teams", "webhook", "pagerduty"]
CHANNEL_TYPES: tuple[str, ...] = get_args(ChannelType)
CONFIG_PURPOSE = "notification-channel"  # what the config's ciphertext is bound to, beside its id
CODE_PURPOSE = "notification-channel-code"
MOST_TESTS_A_DAY = 5  # test messages to one channel in a day: its target is not anyone's to flood
MOST_WRONG_CODES = 5
MOST_CHANNELS = 20
# one plain address: no display name, no list, no group (`a,b@x`, `g:;x@y` put others on the mail)
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
# the hosts each service's incoming webhooks live on (Teams: Workflows on Azure Logic Apps or Power
# Automate, and the retiring Office 365 connectors); any host when private targets are allowed
HOSTS: dict[str, tuple[str, ...]] = {
    "slack": ("hooks.slack.com",),
    "discord": ("discord.com", "discordapp.com"),
    "teams": (".logic.azure.com", ".webhook.office.com", ".powerplatform.com", ".environment.api.powerplatform.com"),
}


class Channel(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    type: str
    target_hint: str
    is_verified: bool
    verified_at: datetime | None
    is_active: bool
    last_sent_at: datetime | None
    failure_count: int
    last_failure_at: datetime | None
    last_failure_reason: str | None
    created_at: datetime


def _hint(target: str) -> str:
    """What identifies a target without giving it away."""
    return ("…" + target[-4:]) if len(target) > 8 else "…"


def _new_code(box: SecretBox, channel_id: uuid.UUID) -> bytes:
    """A six-digit code, encrypted like the channel's target (a hash of six digits is no secret)."""
    return box.encrypt(f"{secrets.randbelow(10**6):06d}", channel_id, CODE_PURPOSE)


def open_code(box: SecretBox, blob: bytes, channel_id: uuid.UUID) -> str:
    return box.decrypt(blob, channel_id, CODE_PURPOSE)


async def config_of(kind: str, target: str, allow_private: bool) -> tuple[dict[str, str], str]:
    """The stored config of a target and its hint, or InvalidWebhook saying what is wrong."""
    target = target.strip()
    if kind == "email":
        if not EMAIL.match(target) or len(target) > 254:
            raise InvalidWebhook("target must be an email address.", param="target")
        local, _, domain = target.partition("@")
        return {"email": target}, f"{local[:1]}…@{domain}"
    if kind == "pagerduty":
        if not ROUTING_KEY.match(target):
            raise InvalidWebhook("target must be a PagerDuty Events API v2 routing key (32 letters and digits).",
                                 param="target")  # fmt: skip
        return {"routing_key": target}, _hint(target)
    try:
        url = checked_url(target)
        await refuse_private(url, allow_private)
    except InvalidWebhook as exc:  # the same checks as a webhook's url; here the field is `target`
        raise InvalidWebhook(exc.message.replace("url", "target", 1), param="target") from None
    host = (urlsplit(url).hostname or "").lower()
    allowed = HOSTS.get(kind)
    if not allow_private:
        if urlsplit(url).scheme != "https":
            raise InvalidWebhook("target must be an https URL.", param="target")
        if allowed and not any(host == h or (h.startswith(".") and host.endswith(h)) for h in allowed):
            raise InvalidWebhook(f"target must be a {kind} incoming-webhook URL (on {', '.join(allowed)}).",
                                 param="target")  # fmt: skip
    config = {"url": url}
    if kind == "webhook":
        config["secret"] = new_secret()
    return config, f"{host}/{_hint(url)}"


@dataclass(frozen=True, slots=True)
class Created:
    channel: Channel
    secret: str | None  # a webhook channel's signing secret, shown once


async def create_channel(
    db: Executor,
    box: SecretBox,
    workspace_id: uuid.UUID,
    name: str,
    kind: str,
    target: str,
    created_by: uuid.UUID | None,
    *,
    allow_private: bool,
) -> Created:
    """A new channel, unverified: its test message (with the code to enter back) is queued."""
    if kind not in CHANNEL_TYPES:
        raise InvalidWebhook(f"type must be one of {', '.join(CHANNEL_TYPES)}.", param="type")
    clean = name.strip()
    if not 1 <= len(clean) <= 100 or not clean.isprintable():
        raise InvalidWebhook("name must be 1 to 100 printable characters.", param="name")
    config, hint = await config_of(kind, target, allow_private)
    await db.fetchval(query("lock_workspace"), workspace_id)  # the count and the insert as one step
    if await db.fetchval(query("count_channels_of_workspace"), workspace_id) >= MOST_CHANNELS:
        raise TooManyControls(f"A workspace has at most {MOST_CHANNELS} notification channels.")
    channel_id = uuid.uuid4()
    with translate_errors():
        await db.fetchval(
            query("insert_channel"),
            channel_id,
            workspace_id,
            clean,
            kind,
            box.encrypt(json.dumps(config), channel_id, CONFIG_PURPOSE),
            hint,
            _new_code(box, channel_id),
            created_by,
        )
    return Created(cast(Channel, await channel(db, workspace_id, channel_id)), config.get("secret"))


async def channels_of(db: Executor, workspace_id: uuid.UUID) -> list[Channel]:
    return [cast(Channel, dict(row)) for row in await db.fetch(query("channels_of_workspace"), workspace_id)]


async def channel(db: Executor, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel | None:
    row = await db.fetchrow(query("channel_of_workspace"), workspace_id, channel_id)
    return None if row is None else cast(Channel, dict(row))


async def verify(
    db: Executor, box: SecretBox, workspace_id: uuid.UUID, channel_id: uuid.UUID, code: str, by: uuid.UUID | None
) -> bool | None:
    """True: verified (or already); False: a wrong or expired code (the fifth wrong one spends
    the code); None: no such channel. Run it in a transaction that commits a refusal too: the
    channel's row stays locked until then, so guesses sent at once are counted one by one, and each
    wrong one is in the audit log."""
    row = await db.fetchrow(query("channel_verification_of"), workspace_id, channel_id)
    if row is None:
        return None
    if row["is_verified"]:
        return True
    stored = row["verification_code_encrypted"]
    expected = None if stored is None or not row["fresh"] else open_code(box, bytes(stored), channel_id)
    if expected is None or not hmac.compare_digest(expected.encode(), code.strip().encode()):
        failures = await db.fetchval(query("channel_verification_failed"), workspace_id, channel_id)
        await audit.record(db, "notification_channel.verify_failed", "notification_channel", str(channel_id),
                           workspace_id=workspace_id, person_id=by,
                           after=json.dumps({"wrong_codes": failures}))  # fmt: skip
        return False
    return await db.fetchval(query("channel_verified"), workspace_id, channel_id) is not None


async def resend_test(
    db: Executor, box: SecretBox, workspace_id: uuid.UUID, channel_id: uuid.UUID, by: uuid.UUID | None
) -> bool | None:
    """A new test message (with a new code while unverified). None: no such channel; False: it had
    its MOST_TESTS_A_DAY already. Audited."""
    if await channel(db, workspace_id, channel_id) is None:
        return None
    queued = await db.fetchval(
        query("channel_new_test"), workspace_id, channel_id, _new_code(box, channel_id), MOST_TESTS_A_DAY
    )
    if queued is None:
        return False
    await audit.record(db, "notification_channel.test", "notification_channel", str(channel_id),
                       workspace_id=workspace_id, person_id=by)  # fmt: skip
    return True


async def set_active(db: Executor, workspace_id: uuid.UUID, channel_id: uuid.UUID, active: bool) -> bool:
    return await db.fetchval(query("channel_set_active"), workspace_id, channel_id, active) is not None


async def delete_channel(db: Executor, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> bool:
    return await db.fetchval(query("delete_channel"), workspace_id, channel_id) is not None


def open_config(box: SecretBox, row: asyncpg.Record | dict[str, Any]) -> dict[str, str]:
    opened: dict[str, str] = json.loads(box.decrypt(bytes(row["config_encrypted"]), row["channel_id"], CONFIG_PURPOSE))
    return opened


async def rotate_config_encryption(pool: asyncpg.Pool, box: RingBox, batch: int = 500) -> SecretRotation:
    """`ledger byok rotate`: each channel's target under an old LEDGER_ENCRYPTION_KEY is
    re-encrypted under the current one, once; one no configured key opens is counted unreadable
    (its owners add the channel again)."""
    rows_after, replace = query("channel_configs_after"), query("replace_channel_config")
    return await rotate_column(pool, box, CONFIG_PURPOSE, rows_after, replace, "config_encrypted", batch)

"""The metered request's SQL calls: begin (key lookup + hold), settle-and-log, release-and-log.

A request takes two round trips: `begin_request` and `finish_request` (or `fail_request`).
A user with their own provider keys takes one more (`reserve_request`), because the routes, and so
the hold, depend on keys only the service can decrypt. Under load the service sends the begins,
settles and failures of concurrent requests in batches (`BATCH_FORM`, ledger.db.group_commit).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ledger.db.executor import Executor
from ledger.db.group_commit import BatchForm
from ledger.db.queries import query
from ledger.errors import translate_errors
from ledger.money.holds import Reservation
from ledger.money.values import to_credits

log = logging.getLogger("ledger.metering")

BEGIN = "SELECT * FROM begin_llm_request($1, $2, $3::jsonb, $4, $5, $6, $7, $8::jsonb, $9::jsonb)"
SETTLE = "SELECT * FROM settle_llm_request($1, $2, $3::jsonb, $4::uuid)"
FAIL = query("fail_llm_request")
# The three as one statement over arrays (migration 0026): what group commit sends. Settles run
# first, then failures, then begins (what a settle frees, a begin in the same batch may hold).
BATCH_FORM = BatchForm(
    "SELECT * FROM ledger_metered_calls($1, $2::uuid[], $3::numeric[], $4::text[], $5::uuid[], $6::uuid[],"
    " $7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[], $12::text[], $13::interval[], $14::text[],"
    " $15::text[], $16::text[])",
    (SETTLE, FAIL, BEGIN),
)

# What PostgreSQL's text and jsonb cannot hold: NUL, and a UTF-16 surrogate with no partner (JSON
# can spell one, "\ud83d": a truncated emoji from an upstream; it has no UTF-8 encoding).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """Text as PostgreSQL can store it: each character it cannot hold replaced by U+FFFD. An
    upstream's words reach the usage row (its error message, an anomaly): whatever bytes it sent,
    the row is written and the hold resolved."""
    return UNSTORABLE.sub("\ufffd", text)


@dataclass(slots=True)
class UsageRecord:
    """One llm_usage_log row, as the service knows it."""

    request_id: str
    model: str
    # the owner, key and level are known once begin_request has found the key
    user_id: uuid.UUID | None = None
    gateway_key_id: uuid.UUID | None = None
    power_level: str | None = None
    provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    cost_multiplier: Decimal | None = None
    latency_ms: int | None = None
    status_code: int | None = None
    error_message: str | None = None
    is_byok: bool = False
    success: bool = True
    usage_anomaly: str | None = None
    reported_usage: str | None = None
    api: str | None = None  # the API the request came in by: chat, responses, embeddings, ...
    # parts of prompt_tokens (the first seven) and of completion_tokens (see migration 0013)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    cache_audio_read_tokens: int = 0
    input_image_tokens: int = 0
    cache_image_read_tokens: int = 0
    reasoning_tokens: int = 0
    output_audio_tokens: int = 0
    output_image_tokens: int = 0
    # the customer's own end user, as the request named it (OpenAI's user or safety_identifier,
    # Anthropic's metadata.user_id): budgets and limits on an end user match it
    end_user: str | None = None
    # what the tightest request limit over it had left once it was admitted (seed 004
    # request_logs.rate_limit_remaining); None when no request limit applies
    rate_limit_remaining: int | None = None

    def count(self, counts: Mapping[str, int]) -> None:
        """Sets every count from {token type: count} (input, output, cache_read, ...)."""
        for name, value in counts.items():
            setattr(self, {"input": "prompt_tokens", "output": "completion_tokens"}.get(name, f"{name}_tokens"), value)

    def to_json(self) -> str:
        # Decimals and UUIDs travel as strings; PostgreSQL reads them back exactly. (Every field is
        # a scalar, so the fields are read directly: dataclasses.asdict deep-copies, on every request.)
        fields = {name: getattr(self, name) for name in self.__slots__}
        for name in ("error_message", "usage_anomaly", "reported_usage", "model", "provider", "end_user"):
            if isinstance(value := fields[name], str):
                fields[name] = storable(value)
        return json.dumps(fields, default=str)


@dataclass(frozen=True, slots=True)
class Charge:
    charged: Decimal
    shortfall: Decimal
    new_balance: Decimal
    # What the user can still spend (allowance left + balance - holds); None = unlimited.
    available: Decimal | None
    transaction_id: int | None
    # The settle has not reached the database yet (it is retried in the background).
    pending: bool = False


@dataclass(frozen=True, slots=True)
class Begun:
    """What begin_llm_request found and did (see migrations 0012 and 0021 for each hold_state)."""

    key_id: uuid.UUID
    user_id: uuid.UUID
    power_level: str
    hold_state: str
    reservation: Reservation | None
    # hold_state "byok": the user's provider keys, still encrypted (id, provider, encrypted_key)
    own_keys: list[dict[str, Any]]
    # the controls' answer (ledger_check_controls: refusal, requests, tokens, soft), or None
    controls: dict[str, Any] | None = None
    # the providers the key may use (None: any)
    allowed_providers: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ControlledHold:
    """What reserve_controlled_request did: hold_state held / refused / none / budget / rate_limit."""

    hold_state: str
    reservation: Reservation | None
    controls: dict[str, Any] | None


async def begin_request(
    db: Executor,
    key_hash: str,
    power_level: str | None,
    holds: dict[str, tuple[Decimal, Decimal]],
    byok: bool,
    ttl: timedelta,
    description: str,
    usage: UsageRecord,
    facts: dict[str, Any],
) -> Begun | None:
    """Finds the key's owner and holds what the request can cost at their level, under the key's
    restrictions and the workspace's controls, in one call. `holds`: per power level, (the most
    the request can cost, the level's multiplier); `facts`: model, end_user, client_ip, tokens (the
    request's token bound), providers. None: the key is unknown, revoked or expired."""
    levels = {
        name: {"credits": str(to_credits(most, allow_zero=True)), "multiplier": str(multiplier)}
        for name, (most, multiplier) in holds.items()
    }
    with translate_errors():
        row = await db.fetchrow(
            BEGIN,
            key_hash,
            power_level,
            json.dumps(levels),
            byok,
            usage.request_id,
            ttl,
            description,
            usage.to_json(),
            json.dumps(facts),
        )
    if row is None:
        return None
    own_keys = json.loads(row["own_keys"]) if row["own_keys"] is not None else []
    allowed = list(row["allowed_providers"]) if row["allowed_providers"] is not None else None
    held = _controlled_hold(row)
    return Begun(
        row["key_id"], row["user_id"], row["power_level"], held.hold_state, held.reservation, own_keys, held.controls,
        allowed,
    )  # fmt: skip


def _controlled_hold(row: Any) -> ControlledHold:
    """A hold's columns as begin_llm_request and reserve_controlled_request return them."""
    state = row["hold_state"]
    reservation = (
        Reservation(state == "held", row["hold_id"], row["available"]) if state in ("held", "refused") else None
    )
    controls = json.loads(row["controls"]) if row["controls"] is not None else None
    return ControlledHold(state, reservation, controls)


async def reserve_request(
    db: Executor,
    key_id: uuid.UUID,
    amount: Decimal,
    ttl: timedelta,
    description: str,
    usage: UsageRecord,
    facts: dict[str, Any],
) -> ControlledHold:
    """The hold of a request on the user's own provider keys, under the same controls as
    begin_request's, with the usage row the hold leaves if the request is never settled."""
    failed = UsageRecord(**{**asdict(usage), "success": False})
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM reserve_controlled_request($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
            key_id,
            to_credits(amount, allow_zero=True),
            usage.request_id,
            ttl,
            description,
            failed.to_json(),
            json.dumps(facts),
        )
    return _controlled_hold(row)


async def extend_hold(db: Executor, hold_id: uuid.UUID, ttl: timedelta) -> bool:
    return bool(await db.fetchval("SELECT extend_credit_hold($1, $2)", hold_id, ttl))


async def finish_request(
    db: Executor, hold_id: uuid.UUID | None, credits: Decimal, usage: UsageRecord, byok_key_id: uuid.UUID | None
) -> Charge:
    """Settle (never above the hold), write the usage row, and count the BYOK key's use, in one call."""
    with translate_errors():
        row = await db.fetchrow(
            SETTLE,
            hold_id,
            to_credits(credits, allow_zero=True),
            usage.to_json(),
            byok_key_id,
        )
    return Charge(row["charged"], row["shortfall"], row["new_balance"], row["available"], row["transaction_id"])


async def fail_request(db: Executor, hold_id: uuid.UUID | None, usage: UsageRecord) -> Decimal:
    """Release the hold and log the failure; returns the credits released."""
    with translate_errors():
        row = await db.fetchrow(FAIL, hold_id, usage.to_json())
    released: Decimal = row["released"]
    return released

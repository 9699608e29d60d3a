"""The metered request's SQL calls: settle-and-log on success, release-and-log on failure."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal

from ledger.errors import translate_errors
from ledger.values import Executor, to_credits


@dataclass(slots=True)
class UsageRecord:
    """One llm_usage_log row, as the service knows it."""

    request_id: str
    user_id: uuid.UUID
    gateway_key_id: uuid.UUID | None
    model: str
    power_level: str
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

    def to_json(self) -> str:
        # Decimals and UUIDs travel as strings; PostgreSQL reads them back exactly.
        return json.dumps(asdict(self), default=str)


@dataclass(frozen=True, slots=True)
class Charge:
    charged: Decimal
    shortfall: Decimal
    new_balance: Decimal
    # What the user can still spend (allowance left + balance - holds); None = unlimited.
    available: Decimal | None
    transaction_id: int | None


async def settle_request(db: Executor, hold_id: uuid.UUID | None, credits: Decimal, usage: UsageRecord) -> Charge:
    with translate_errors():
        row = await db.fetchrow(
            "SELECT * FROM settle_llm_request($1, $2, $3::jsonb)",
            hold_id,
            to_credits(credits, allow_zero=True),
            usage.to_json(),
        )
    return Charge(row["charged"], row["shortfall"], row["new_balance"], row["available"], row["transaction_id"])


async def fail_request(db: Executor, hold_id: uuid.UUID | None, usage: UsageRecord) -> Decimal:
    """Release the hold and log the failure; returns the credits released."""
    with translate_errors():
        return await db.fetchval("SELECT fail_llm_request($1, $2::jsonb)", hold_id, usage.to_json())

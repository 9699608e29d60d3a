"""Metered requests at the SQL level, as the engine makes them (begin_llm_request, then
settle_llm_request or fail_llm_request), for tests that drive many at once on one database."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from ledger.gateway.keys import create_key, hash_key

TTL = timedelta(minutes=5)


@dataclass
class Wallet:
    workspace_id: uuid.UUID
    project_id: uuid.UUID
    key_id: uuid.UUID
    key_hash: str
    key: str


async def make_wallet(conn: asyncpg.Connection | asyncpg.Pool, credits: str = "1000000") -> Wallet:
    user_id = await conn.fetchval(
        "INSERT INTO user_credits (tier, monthly_allowance) VALUES ('trial', 0) RETURNING user_id"
    )
    await conn.execute("SELECT add_user_credits($1, $2, 'bonus', NULL, 'starting credits')", user_id, Decimal(credits))
    key = await create_key(conn, user_id, "test")
    project_id = await conn.fetchval("SELECT project_id FROM gateway_api_keys WHERE id = $1", key.id)
    return Wallet(user_id, project_id, key.id, hash_key(key.key), key.key)


def usage(request_id: str, wallet: Wallet, model: str, end_user: str | None, **more: Any) -> dict[str, Any]:
    return {"request_id": request_id, "model": model, "end_user": end_user, "api": "chat",
            "user_id": str(wallet.workspace_id), "gateway_key_id": str(wallet.key_id), **more}  # fmt: skip


async def begin(
    conn: asyncpg.Connection | asyncpg.Pool,
    wallet: Wallet,
    amount: Decimal,
    *,
    model: str = "gpt-4",
    end_user: str | None = None,
    tokens: int = 1000,
    request_id: str | None = None,
) -> tuple[str, asyncpg.Record]:
    """(request id, begin_llm_request's row) of a request that can cost `amount`."""
    request_id = request_id or f"req_{uuid.uuid4().hex}"
    facts = {"model": model, "end_user": end_user, "client_ip": "127.0.0.1", "tokens": tokens, "providers": ["openai"]}
    row = await conn.fetchrow(
        "SELECT * FROM begin_llm_request($1, 'balanced', $2::jsonb, false, $3, $4, 'test', $5::jsonb, $6::jsonb)",
        wallet.key_hash,
        json.dumps({"balanced": {"credits": str(amount), "multiplier": "1"}}),
        request_id,
        TTL,
        json.dumps({"request_id": request_id, "model": model, "end_user": end_user, "api": "chat"}),
        json.dumps(facts),
    )
    return request_id, row


async def settle(
    conn: asyncpg.Connection | asyncpg.Pool,
    wallet: Wallet,
    request_id: str,
    hold_id: uuid.UUID,
    credits: Decimal,
    *,
    model: str = "gpt-4",
    end_user: str | None = None,
    tokens: int = 0,
) -> asyncpg.Record:
    body = usage(request_id, wallet, model, end_user, prompt_tokens=tokens, power_level="balanced")
    return await conn.fetchrow(
        "SELECT * FROM settle_llm_request($1, $2, $3::jsonb, NULL::uuid)", hold_id, credits, json.dumps(body)
    )


async def fail(
    conn: asyncpg.Connection | asyncpg.Pool,
    wallet: Wallet,
    request_id: str,
    hold_id: uuid.UUID,
    *,
    model: str = "gpt-4",
    end_user: str | None = None,
) -> None:
    body = usage(request_id, wallet, model, end_user, success=False, status_code=502, power_level="balanced")
    await conn.execute("SELECT fail_llm_request($1, $2::jsonb)", hold_id, json.dumps(body))

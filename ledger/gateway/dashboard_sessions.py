"""Dashboard sessions signed out of before they expired (sql 0016): a signed cookie cannot be
taken back, so its nonce is recorded and every page view checks it."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.db.executor import Executor
from ledger.db.queries import query


async def end_session(db: Executor, nonce: str, expires_at: int) -> None:
    """The session with this nonce (expiring at the unix time `expires_at`) works no more."""
    await db.fetchval(query("end_dashboard_session"), nonce, datetime.fromtimestamp(expires_at, UTC))


async def session_ended(db: Executor, nonce: str) -> bool:
    return bool(await db.fetchval(query("dashboard_session_ended"), nonce))

"""The controls over one gateway key, with what is left of each: what its holder sees."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.db.executor import Executor


async def controls_over_key(db: Executor, key_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every budget and rate limit on the key's path (controls_over_key, migration 0021)."""
    return [dict(row) for row in await db.fetch("SELECT * FROM controls_over_key($1)", key_id)]

"""What the operator sees of workspaces: each with its kind, balance, members and projects."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypedDict, cast

from ledger.db.executor import Executor
from ledger.db.queries import query


class WorkspaceListed(TypedDict):
    id: uuid.UUID
    name: str
    kind: str
    created_at: datetime
    balance: Decimal
    members: int
    projects: int


async def workspaces_overview(db: Executor, limit: int) -> list[WorkspaceListed]:
    return [cast(WorkspaceListed, dict(row)) for row in await db.fetch(query("workspaces_overview"), limit)]

"""The audit log (sql 0019 `audit_logs`): read by owners and admins (their workspace) and the
operator (all); written by triggers, and by `record` for what changes no audited row (sign-ins)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from ledger.db.executor import Executor
from ledger.db.queries import query


class AuditRow(TypedDict):
    id: int
    workspace_id: uuid.UUID | None
    person_id: uuid.UUID | None
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    action: str
    resource_type: str
    resource_id: str | None
    before: Any
    after: Any
    ip: Any
    user_agent: str | None
    request_id: str | None
    created_at: datetime


async def record(
    db: Executor,
    action: str,
    resource_type: str,
    resource_id: str | None,
    *,
    workspace_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
    after: str | None = None,
) -> None:
    """One audit row by the transaction's actor (call it inside `acting`). `after` is JSON text."""
    await db.fetchval(
        "SELECT ledger_audit($1, $2, $3, $4, $5, NULL, $6::jsonb)",
        workspace_id,
        person_id,
        action,
        resource_type,
        resource_id,
        after,
    )


async def audit_page(
    db: Executor,
    workspace_id: uuid.UUID | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actions: Sequence[str] = (),
    actor_ids: Sequence[str] = (),
    resource_ids: Sequence[str] = (),
    after: int | None = None,
    before: int | None = None,
    limit: int = 20,
) -> list[AuditRow]:
    """Newest first. A workspace's log holds its own rows and the person-level rows (sign-ins,
    MFA, sessions) of its current members; workspace_id None is every row (the operator)."""
    rows = await db.fetch(
        query("audit_log_page"),
        workspace_id,
        since,
        until,
        list(actions) or None,
        list(actor_ids) or None,
        list(resource_ids) or None,
        after,
        before,
        limit,
    )
    return [cast(AuditRow, dict(row)) for row in rows]

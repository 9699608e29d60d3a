"""Model-access requests (seed 002): a member asks for a model their key does not allow; an owner
or admin approves (the model joins the key's allowed models) or denies. Audited."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.controls.scopes import model_pattern
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidControl


async def ask_for_model(
    db: Executor,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    person_id: uuid.UUID | None,
    model: str,
    reason: str | None,
) -> dict[str, Any] | None:
    """The pending request (a second ask for the same key and model is the same one); None when
    the key is not an active key of the workspace."""
    if reason is not None and len(reason) > 1000:
        raise InvalidControl("reason: at most 1000 characters.", param="reason")
    row = await db.fetchrow(
        query("insert_model_access_request"), workspace_id, key_id, person_id, model_pattern(model), reason or None
    )
    return None if row is None else dict(row)


async def access_requests_of(db: Executor, workspace_id: uuid.UUID, limit: int = 100) -> list[dict[str, Any]]:
    return [dict(row) for row in await db.fetch(query("model_access_requests_of_workspace"), workspace_id, limit)]


async def decide(
    db: Executor, workspace_id: uuid.UUID, request_id: uuid.UUID, approve: bool, person_id: uuid.UUID | None
) -> dict[str, Any] | None:
    """None when the request is not pending in the workspace."""
    row = await db.fetchrow(query("decide_model_access_request"), workspace_id, request_id, approve, person_id)
    return None if row is None else dict(row)

"""A control's scope: what part of a workspace a budget or rate limit covers."""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidControl, TooManyControls

ScopeType = Literal["workspace", "project", "member", "key", "end_user"]
SCOPE_TYPES: tuple[str, ...] = get_args(ScopeType)
MOST_PATTERN_CHARACTERS = 200


def scope_id_of(workspace_id: uuid.UUID, scope_type: str, scope_id: str | None) -> str:
    """The scope's id as stored: the workspace's own for a workspace scope (given or not), an id
    for a project, member (person) or key, the end user's own id as the requests name it."""
    if scope_type not in SCOPE_TYPES:
        raise InvalidControl(f"scope.type must be one of {', '.join(SCOPE_TYPES)}.", param="scope.type")
    if scope_type == "workspace":
        if scope_id not in (None, "", str(workspace_id)):
            raise InvalidControl("A workspace scope names this workspace (or no id).", param="scope.id")
        return str(workspace_id)
    if not scope_id:
        raise InvalidControl(f"A {scope_type.replace('_', ' ')} scope needs its id.", param="scope.id")
    if scope_type == "end_user":
        if len(scope_id) > 256 or not scope_id.isprintable():
            raise InvalidControl("An end user's id is 1 to 256 printable characters.", param="scope.id")
        return scope_id
    try:
        return str(uuid.UUID(scope_id))
    except ValueError:
        raise InvalidControl(f"scope.id must be the {scope_type}'s id.", param="scope.id") from None


def model_pattern(value: str | None) -> str | None:
    """A model or a pattern of models ('*': any run of characters), or None for every model."""
    if value is None:
        return None
    if not value or len(value) > MOST_PATTERN_CHARACTERS or not value.isprintable():
        raise InvalidControl(
            f"model is a model name or pattern ('*' for any run of characters), 1 to {MOST_PATTERN_CHARACTERS}"
            " printable characters.",
            param="model",
        )
    return value


# Every request checks each control on its path, so a workspace's are capped.
MOST_PER_WORKSPACE = 100


async def require_room(db: Executor, workspace_id: uuid.UUID, kind: str) -> None:
    """TooManyControls when the workspace has MOST_PER_WORKSPACE of `kind` (budgets, rate_limits)."""
    counts = await db.fetchrow(query("controls_count_of_workspace"), workspace_id)
    if counts is not None and counts[kind] >= MOST_PER_WORKSPACE:
        raise TooManyControls(
            f"This workspace has {counts[kind]} {kind.replace('_', ' ')}, the most it may: delete one first."
        )

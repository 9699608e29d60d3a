"""Projects (seed 004): every gateway key is in one; each workspace has a default one. Archiving
a project revokes its keys in the same statement (requests with them stop at once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypedDict, cast

import asyncpg

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import NameTaken


class Project(TypedDict):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    is_default: bool
    created_at: datetime
    archived_at: datetime | None


def _project(row: object) -> Project:
    return cast(Project, dict(cast(asyncpg.Record, row)))


async def projects_of(
    db: Executor, workspace_id: uuid.UUID, *, archived: bool = False, after: uuid.UUID | None = None, limit: int = 100
) -> list[Project]:
    return [
        _project(row) for row in await db.fetch(query("projects_of_workspace"), workspace_id, archived, after, limit)
    ]


async def project(db: Executor, workspace_id: uuid.UUID, project_id: uuid.UUID) -> Project | None:
    row = await db.fetchrow(query("project_of_workspace"), workspace_id, project_id)
    return None if row is None else _project(row)


async def create_project(db: Executor, workspace_id: uuid.UUID, name: str) -> Project:
    try:
        return _project(await db.fetchrow(query("insert_project"), workspace_id, name))
    except asyncpg.UniqueViolationError:
        raise NameTaken(f"this workspace already has a project named {name!r}", param="name") from None


async def rename_project(db: Executor, workspace_id: uuid.UUID, project_id: uuid.UUID, name: str) -> Project | None:
    try:
        row = await db.fetchrow(query("rename_project"), workspace_id, project_id, name)
    except asyncpg.UniqueViolationError:
        raise NameTaken(f"this workspace already has a project named {name!r}", param="name") from None
    return None if row is None else _project(row)


async def archive_project(db: Executor, workspace_id: uuid.UUID, project_id: uuid.UUID) -> Project | None:
    row = await db.fetchrow(query("archive_project"), workspace_id, project_id)
    return None if row is None else _project(row)

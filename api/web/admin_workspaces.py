"""/admin/dashboard/workspaces: the operator sees every workspace with its members, projects and
audit log, and every workspace's audit log at once."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from api.services import services
from api.web.admin_pages import signed_in
from api.web.pages import ADMIN_AREA, PageError, page, render, row_cursor
from ledger.accounts import audit, projects, workspaces
from ledger.accounts.overview import workspaces_overview

AUDIT_ROWS = 50


@page(ADMIN_AREA)
async def workspaces_page(request: Request) -> Response:
    session = await signed_in(request)
    rows = await workspaces_overview(services(request).pool, 500)
    return render(request, "admin/workspaces.html", {"workspaces": rows}, session=session)


@page(ADMIN_AREA)
async def workspace_page(request: Request) -> Response:
    session = await signed_in(request)
    try:
        workspace_id = uuid.UUID(request.path_params["workspace_id"])
    except ValueError:
        raise PageError(404, "No such workspace.") from None
    pool = services(request).pool
    found = await workspaces.workspace(pool, workspace_id)
    if found is None:
        raise PageError(404, "No such workspace.")
    log = await audit.audit_page(pool, workspace_id, after=row_cursor(request), limit=AUDIT_ROWS + 1)
    context = {
        "workspace": found,
        "members": await workspaces.members(pool, workspace_id, None, 1000),
        "projects": await projects.projects_of(pool, workspace_id, archived=True, limit=1000),
        "rows": log[:AUDIT_ROWS],
        "next": log[AUDIT_ROWS - 1]["id"] if len(log) > AUDIT_ROWS else None,
        "path": f"{ADMIN_AREA.root}/workspaces/{workspace_id}",
    }
    return render(request, "admin/workspace.html", context, session=session)


@page(ADMIN_AREA)
async def audit_log_page(request: Request) -> Response:
    """Every workspace's log, and the operator's own changes (prices, packages)."""
    session = await signed_in(request)
    log = await audit.audit_page(services(request).pool, None, after=row_cursor(request), limit=AUDIT_ROWS + 1)
    context = {
        "rows": log[:AUDIT_ROWS],
        "next": log[AUDIT_ROWS - 1]["id"] if len(log) > AUDIT_ROWS else None,
        "path": f"{ADMIN_AREA.root}/audit",
        "show_workspace": True,
    }
    return render(request, "admin/audit.html", context, session=session)

"""Liveness (the process answers) and readiness (database reachable, migrations current)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import is_database_outage
from api.services import services
from ledger.db.migrations import MigrationError, pending


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        async with services(request).pool.acquire(timeout=2) as conn:
            todo = await pending(conn)
    except MigrationError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        return JSONResponse({"status": "unavailable", "reason": f"database unreachable: {exc}"}, status_code=503)
    if todo:
        names = [m.path.name for m in todo]
        return JSONResponse(
            {"status": "unavailable", "reason": "migrations pending", "pending": names}, status_code=503
        )
    return JSONResponse({"status": "ready"})

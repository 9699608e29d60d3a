"""One mapping from ledger errors to HTTP responses (a handler for the base class covers all)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ledger.errors import LedgerError


async def ledger_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    body = {"error": {"message": exc.message, "type": "invalid_request_error", "code": exc.code}}
    if exc.hint:
        body["error"]["hint"] = exc.hint
    return JSONResponse(body, status_code=exc.http_status)


EXCEPTION_HANDLERS = {LedgerError: ledger_error}

"""Errors as HTTP responses, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

One handler per base class: ApiError (raised by routes), LedgerError (raised by the ledger's
wrappers, carrying their own status), and Starlette's HTTPException (unknown paths, methods).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.jsonresponse import LedgerJSONResponse
from ledger.errors import LedgerError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})


def error_response(error: ApiError) -> Response:
    body = {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    return LedgerJSONResponse(body, status_code=error.status, headers=error.headers)


async def api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


def ledger_error_response(exc: LedgerError, headers: Mapping[str, str] | None = None) -> Response:
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    error = ApiError(
        exc.http_status,
        message,
        type=exc.error_type,
        code=exc.code,
        param=exc.param,
        headers={**exc.headers, **(headers or {})},
    )
    return error_response(error)


async def ledger_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    return ledger_error_response(exc)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return error_response(ApiError(exc.status_code, str(exc.detail), code=code, headers=exc.headers))


def internal_error() -> Response:
    """Anything unexpected is our fault; api/middleware.py logs it and answers with this."""
    return error_response(
        ApiError(
            500,
            "The service failed on this request; it has been logged. A metered request's hold is released or "
            "expires: nothing is charged for it twice.",
            type="server_error",
            code="internal_error",
        )
    )


# Seconds a client is asked to wait when the database is unreachable: the pool reconnects by itself.
RETRY_AFTER_SECONDS = 5


def is_database_outage(exc: BaseException) -> bool:
    """The database cannot be reached or is going away: not this request's fault, nor a bug."""
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # lost connections, refused connects (08xxx)
        | asyncpg.exceptions.OperatorInterventionError  # shutdown, restart, cancelled statements (57xxx)
        | asyncpg.exceptions.InsufficientResourcesError  # too many connections, disk full (53xxx)
        | OSError  # refused, reset, unreachable: socket errors
        | TimeoutError,  # pool acquire or statement timeout
    ):
        return True
    # asyncpg raises a bare InterfaceError for an operation on a connection that was closed
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc).lower()


def unexpected_error(exc: BaseException) -> Response:
    """The answer to an exception no route handled: the one place that decides 503 vs 500."""
    if is_database_outage(exc):
        return error_response(
            ApiError(
                503,
                "The ledger's database is unreachable right now; nothing was charged. Retry shortly.",
                type="service_unavailable",
                code="database_unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        )
    if isinstance(exc, asyncpg.DataError):
        # a value PostgreSQL cannot store (22xxx: overflow, bad encoding...); the route's own checks
        # should have refused it, this keeps it a 400 where one was missed
        return error_response(ApiError(400, f"A value in the request is out of range: {exc}.", code="invalid_request"))
    return internal_error()


EXCEPTION_HANDLERS = {ApiError: api_error, LedgerError: ledger_error, HTTPException: http_error}

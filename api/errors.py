"""Errors as HTTP responses, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}, or
on Anthropic's paths (/v1/messages*) in Anthropic's: {"type": "error", "error": {"type", "message"}}.

One handler per base class: ApiError (raised by routes), LedgerError (raised by the ledger's
wrappers, carrying their own status), and Starlette's HTTPException (unknown paths, methods).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.jsonresponse import LedgerJSONResponse
from ledger.errors import LedgerError
from ledger.logs import request_id_var


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


ANTHROPIC_PATH = "/v1/messages"
# Anthropic's error type for each status (its SDK picks its exception class by the status)
ANTHROPIC_ERROR_TYPES = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def speaks_anthropic(path: str) -> bool:
    """Whether the path is one of Anthropic's API (its clients read errors in its shape)."""
    return path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/")


def anthropic_error_type(status: int) -> str:
    return ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_response(error: ApiError, path: str = "") -> Response:
    """The error in the shape of the API `path` belongs to."""
    if speaks_anthropic(path):
        request_id = request_id_var.get() or ""
        body = {
            "type": "error",
            "error": {"type": anthropic_error_type(error.status), "message": error.message},
            "request_id": request_id,
        }
        return LedgerJSONResponse(body, status_code=error.status, headers={**error.headers, "request-id": request_id})
    body = {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    return LedgerJSONResponse(body, status_code=error.status, headers=error.headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request.url.path)


def ledger_error_response(exc: LedgerError, headers: Mapping[str, str] | None = None, path: str = "") -> Response:
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    error = ApiError(
        exc.http_status,
        message,
        type=exc.error_type,
        code=exc.code,
        param=exc.param,
        headers={**exc.headers, **(headers or {})},
    )
    return error_response(error, path)


async def ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    return ledger_error_response(exc, path=request.url.path)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return error_response(ApiError(exc.status_code, str(exc.detail), code=code, headers=exc.headers), request.url.path)


def internal_error(path: str = "") -> Response:
    """Anything unexpected is our fault; api/middleware.py logs it and answers with this."""
    return error_response(
        ApiError(
            500,
            "The service failed on this request; it has been logged. A metered request's hold is released or "
            "expires: nothing is charged for it twice.",
            type="server_error",
            code="internal_error",
        ),
        path,
    )


# Seconds a client is asked to wait when the database is unreachable: the pool reconnects by itself.
RETRY_AFTER_SECONDS = 5


def is_database_outage(exc: BaseException) -> bool:
    """The database cannot be reached or is going away: not this request's fault, nor a bug.

    A failover of a primary/standby pair reached through a multi-host URL with
    target_session_attrs=read-write (docs/high-availability.md) adds two: no host is read-write
    for a moment (the old primary gone or demoted, the standby not yet promoted), and a write
    reaching a server that has just become a standby."""
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # lost connections, refused connects (08xxx)
        | asyncpg.exceptions.OperatorInterventionError  # shutdown, restart, cancelled statements (57xxx)
        | asyncpg.exceptions.InsufficientResourcesError  # too many connections, disk full (53xxx)
        | asyncpg.exceptions.ReadOnlySQLTransactionError  # a write on a server now a standby (25006)
        | asyncpg.exceptions.TargetServerAttributeNotMatched  # no host of the URL is read-write yet
        | OSError  # refused, reset, unreachable: socket errors
        | TimeoutError,  # pool acquire or statement timeout
    ):
        return True
    # asyncpg raises a bare InterfaceError for an operation on a connection that was closed
    if isinstance(exc, asyncpg.InterfaceError):
        return "closed" in str(exc).lower()
    # A server that loses its postmaster sends its idle connections a FATAL error; asyncpg takes
    # that unsolicited message as a protocol error (state 2, "error consume") and refuses the
    # next statement on the connection with this, until it sees the socket close. (Two statements
    # at once on one connection are refused earlier, with an InterfaceError: a bug stays a 500.)
    return isinstance(exc, asyncpg.exceptions.InternalClientError) and bool(_ERROR_CONSUMED.fullmatch(str(exc)))


_ERROR_CONSUMED = re.compile(r"cannot switch to state \d+; another operation \(2\) is in progress")


def known_failure(exc: BaseException) -> ApiError | None:
    """What to tell of an exception no route handled when it is not a bug: the database out of
    reach (503), or a value PostgreSQL cannot store (400); None for anything else (a 500)."""
    if is_database_outage(exc):
        return ApiError(
            503,
            "The ledger's database is unreachable right now; nothing was charged. Retry shortly.",
            type="service_unavailable",
            code="database_unavailable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, asyncpg.DataError):
        # a value PostgreSQL cannot store (22xxx: overflow, bad encoding...); the route's own checks
        # should have refused it, this keeps it a 400 where one was missed
        return ApiError(400, f"A value in the request is out of range: {exc}.", code="invalid_request")
    return None


def unexpected_error(exc: BaseException, path: str = "") -> Response:
    """The answer to an exception no route handled: the one place that decides 503 vs 500."""
    known = known_failure(exc)
    return internal_error(path) if known is None else error_response(known, path)


EXCEPTION_HANDLERS = {ApiError: api_error, LedgerError: ledger_error, HTTPException: http_error}

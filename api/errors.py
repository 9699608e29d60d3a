"""Errors as HTTP responses, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

One handler per base class: ApiError (raised by routes), LedgerError (raised by the ledger's
wrappers, carrying their own status), and Starlette's HTTPException (unknown paths, methods).
"""

from __future__ import annotations

from collections.abc import Mapping

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


async def ledger_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return error_response(ApiError(exc.http_status, message, code=exc.code))


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


EXCEPTION_HANDLERS = {ApiError: api_error, LedgerError: ledger_error, HTTPException: http_error}

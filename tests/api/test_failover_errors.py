"""What a database failover raises inside a request is a 503 with Retry-After in the API's own
error shape, never a 500: each exception a primary's loss, restart or demotion can raise (seen by
tests/ha, run by scripts/test-ha), through the middleware that answers unhandled exceptions. An
exception that is not an outage stays a 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.errors import EXCEPTION_HANDLERS, RETRY_AFTER_SECONDS, is_database_outage
from api.middleware import RequestContext

OUTAGES = [
    # the primary's postmaster killed: connects refused, connections cut mid-statement
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("cannot call Connection.fetchrow(): connection is closed"),
    # a server restarting, shutting down, recovering (57P01, 57P03)
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    # no host of the multi-host URL is read-write yet; a write that reached a new standby (25006)
    asyncpg.exceptions.TargetServerAttributeNotMatched(
        'None of the hosts match the target attribute requirement <SessionAttribute.read_write: "read-write">'
    ),
    asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    # a pooled connection whose server sent it a FATAL while idle (its postmaster was killed)
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    # a connect or a pool acquire that did not finish in time
    TimeoutError(),
]
BUGS = [
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.exceptions.InternalClientError("something unexpected"),
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (15) is in progress"),
    asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist'),
    RuntimeError("a bug"),
]


def app_raising(exc: BaseException) -> Starlette:
    """Routes that raise `exc`, under the service's own middleware and exception handlers."""

    async def route(_request: Request) -> Response:
        raise exc

    paths = ["/v1/chat/completions", "/v1/messages", "/webhooks/stripe"]
    return Starlette(
        routes=[Route(path, route, methods=["POST"]) for path in paths],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(RequestContext)],
    )


async def answer(exc: BaseException, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test") as client:
        return await client.post(path, json={})


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_each_failover_exception_is_a_503_with_retry_after_in_openai_shape(exc):
    assert is_database_outage(exc)
    for path in ("/v1/chat/completions", "/webhooks/stripe"):
        response = await answer(exc, path)

        assert response.status_code == 503, (path, response.text)
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("service_unavailable", "database_unavailable")
        assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_each_failover_exception_is_a_503_with_retry_after_in_anthropic_shape(exc):
    response = await answer(exc, "/v1/messages")

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert "unreachable" in body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("exc", BUGS, ids=lambda e: type(e).__name__)
async def test_an_exception_that_is_not_an_outage_stays_a_500(exc):
    assert not is_database_outage(exc)
    response = await answer(exc, "/v1/chat/completions")

    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert response.json()["error"]["code"] == "internal_error"

"""Every request gets an id: in the logs, in the x-request-id response header, and as the
metered request's id. A client's own x-request-id is logged beside it, never trusted as ours.
An unexpected error is logged with that id and answered in OpenAI's error shape: a 503 with
Retry-After when the database is unreachable, a 500 otherwise.

InputGuard refuses, before a route runs: a body larger than the route's limit (by its
Content-Length up front, or counted as a chunked body streams in, so nothing big is buffered),
a NUL character in the path or the query string, and a Content-Length that is not a number; and,
while a route reads it, a body that does not arrive whole within its time (408)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response, unexpected_error
from ledger.logs import request_id_var

log = logging.getLogger("ledger.access")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("x-request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # the client left while its body was being read: nothing was held or charged, and there
            # is no one to answer (499, nginx's "client closed request", for the log)
            status = 499
            log.info("client disconnected before its request body was read")
        except Exception as exc:
            response = unexpected_error(exc, scope["path"])
            if response.status_code >= 500 and response.status_code != 503:
                log.exception("unhandled error")
            else:
                log.warning("request failed: %s: %s", type(exc).__name__, exc)
            if responded:
                raise
            await response(scope, receive, send_with_id)
        finally:
            client_id = next((v.decode("latin-1")[:200] for k, v in scope["headers"] if k == b"x-request-id"), None)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_request_id": client_id,
                },
            )
            request_id_var.reset(token)


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than this endpoint accepts ({limit} bytes).",
        code="request_too_large",
    )


def too_slow(seconds: float) -> ApiError:
    return ApiError(
        408,
        f"The request body did not arrive within {seconds:g} seconds.",
        code="request_timeout",
        headers={"connection": "close"},
    )


class InputGuard:
    """`limit_for(path)` is the most bytes a request body to that path may have; `body_timeout`
    the most seconds it may take to arrive, counted from the route's first read of it (a metered
    route reads it only once the key is known)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int], body_timeout: float = 30.0) -> None:
        self.app = app
        self.limit_for = limit_for
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await error_response(refusal, scope["path"])(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        received = 0
        deadline: float | None = None  # set at the first read; None again once the body is whole
        whole = False

        async def counted() -> Message:
            nonlocal received, deadline, whole
            if whole:  # the body is in: what follows is a wait for the client to leave, unbounded
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.body_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # raised inside the route's body read: answered by the route's error handler
                raise too_slow(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                whole = not message.get("more_body", False)
            return message

        await self.app(scope, counted, send)

    def refusal(self, scope: Scope) -> ApiError | None:
        if "\x00" in scope["path"] or b"%00" in scope["query_string"].lower() or b"\x00" in scope["query_string"]:
            return ApiError(400, "The path or query string contains a NUL character.", code="invalid_parameter")
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            if len(lengths) > 1 or not (lengths[0].isascii() and lengths[0].isdigit()) or len(lengths[0]) > 18:
                return ApiError(400, "Content-Length must be one whole number.", code="invalid_request")
            limit = self.limit_for(scope["path"])
            if int(lengths[0]) > limit:
                return too_large(limit)
        return None

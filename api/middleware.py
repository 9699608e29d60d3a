"""Every request gets an id: in the logs, in the x-request-id response header, and as the
metered request's id. A client's own x-request-id is logged beside it, never trusted as ours.
An unexpected error is logged with that id and answered as a 500 in OpenAI's error shape."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import internal_error
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
        except Exception:
            log.exception("unhandled error")
            if responded:
                raise
            await internal_error()(scope, receive, send_with_id)
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

"""Webhook receivers: real HTTP servers on 127.0.0.1 that verify what they are sent the way a
customer's endpoint does, with the `standardwebhooks` library, and answer as a test tells them
(a status, or a hang past the sender's timeout)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fake_upstream import ServerThread


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]  # which of the receiver's secrets verified it

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def type(self) -> str:
        return str(self.payload["type"])


@dataclass
class WebhookReceiver:
    """Records every post; `secrets` are what it verifies with (set after the webhook is made)."""

    secrets: list[str] = field(default_factory=list)
    status: int = 200
    hang_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        with self._lock:
            self.received.append(Received(headers, body, verified))
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        return PlainTextResponse("ok" if self.status < 300 else "broken", status_code=self.status)

    def start(self) -> WebhookReceiver:
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        self._server = ServerThread(app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{self._server.url}/hooks"

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.type == event_type]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(found := self.of_type(event_type)) < count:
            if time.monotonic() > deadline:
                seen = [r.type for r in self.received]
                raise AssertionError(f"{count} {event_type} not received in {timeout} s; received {seen}")
            time.sleep(0.05)
        return found

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
from starlette.responses import JSONResponse, PlainTextResponse, Response
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


@dataclass
class ChatServices:
    """Slack, Discord and Microsoft Teams incoming webhooks and PagerDuty's Events API v2 on one
    server, each checking the documented payload and answering as the service does: Slack 200
    "ok" (400 "no_text"), Discord 204 (400 when empty or over 2,000 characters), a Teams workflow
    202, PagerDuty 202 {"status": "success", "dedup_key"} (400 "invalid event")."""

    slack: list[dict[str, Any]] = field(default_factory=list)
    discord: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    pagerduty: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False  # every service answers 500
    _server: ServerThread | None = None

    async def _slack(self, request: Request) -> Response:
        body = await request.json()
        if self.down:
            return PlainTextResponse("internal_error", status_code=500)
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            self.refused.append(("slack", "no_text"))
            return PlainTextResponse("no_text", status_code=400)
        self.slack.append(body)
        return PlainTextResponse("ok")

    async def _discord(self, request: Request) -> Response:
        body = await request.json()
        if self.down:
            return PlainTextResponse("", status_code=500)
        content = body.get("content")
        if not isinstance(content, str) or not content or len(content) > 2000:
            self.refused.append(("discord", "content"))
            return Response('{"message": "Cannot send an empty message", "code": 50006}', status_code=400)
        self.discord.append(body)
        return Response(status_code=204)

    async def _teams(self, request: Request) -> Response:
        body = await request.json()
        if self.down:
            return PlainTextResponse("", status_code=500)
        attachments = body.get("attachments") or [{}]
        card = attachments[0].get("content") or {}
        if (
            body.get("type") != "message"
            or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive"
            or card.get("type") != "AdaptiveCard"
            or not card.get("body")
        ):
            self.refused.append(("teams", "not an adaptive card message"))
            return PlainTextResponse("bad request", status_code=400)
        self.teams.append(body)
        return Response(status_code=202)

    async def _pagerduty(self, request: Request) -> Response:
        body = await request.json()
        if self.down:
            return PlainTextResponse("", status_code=500)
        errors = []
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            errors.append("'routing_key' is invalid")
        if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        dedup = body.get("dedup_key")
        if body.get("event_action") != "trigger" and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if isinstance(dedup, str) and len(dedup) > 255:
            errors.append("'dedup_key' is too long")
        if body.get("event_action") == "trigger":
            payload = body.get("payload") or {}
            if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
                errors.append("'payload.summary' is missing or too long")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        if errors:
            self.refused.append(("pagerduty", "; ".join(errors)))
            return JSONResponse(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, 400
            )
        self.pagerduty.append(body)
        return JSONResponse({"status": "success", "message": "Event processed", "dedup_key": dedup}, status_code=202)

    def start(self) -> ChatServices:
        app = Starlette(
            routes=[
                Route("/services/{path:path}", self._slack, methods=["POST"]),
                Route("/api/webhooks/{path:path}", self._discord, methods=["POST"]),
                Route("/workflows/{path:path}", self._teams, methods=["POST"]),
                Route("/v2/enqueue", self._pagerduty, methods=["POST"]),
            ]
        )
        self._server = ServerThread(app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def base(self) -> str:
        assert self._server is not None
        return self._server.url

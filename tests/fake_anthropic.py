"""A fake Anthropic: a real HTTP server on 127.0.0.1 speaking the Messages API (POST /v1/messages,
whole or as its SSE stream, and POST /v1/messages/count_tokens).

The stream is the sequence Anthropic sends: message_start (the usage so far: the input and cache
counts, output_tokens 1), content_block_start, ping, content_block_delta per piece,
content_block_stop, message_delta (the cumulative output_tokens, and the input and cache counts
when `delta_usage` says so), message_stop. Each test sets the usage (cache reads, 5-minute and
1-hour cache writes, thinking tokens), errors, a dropped or stalled stream, and reads the requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fake_upstream import DroppedConnection, ServerThread

SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass
class FakeAnthropic:
    name: str = "anthropic"
    api: str = "anthropic"
    status: int = 200
    input_tokens: int = 100
    output_tokens: int = 50
    cache_read: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake", "Anthropic."])
    # the usage as literal JSON text in message_start (streamed) or the message (not), and in
    # message_delta: overrides the counts above
    usage_json: str | None = None
    delta_usage_json: str | None = None
    # message_delta repeats the input and cache counts (as Anthropic does for some requests)
    delta_usage: bool = False
    chunk_delay: float = 0.0
    drop_after: int | None = None  # cut the connection before this word
    stall_after: int | None = None  # stop sending (for an hour) before this word
    error_after: int | None = None  # send Anthropic's mid-stream error event before this word
    ends_with_stop: bool = True  # False: the stream ends after message_delta, with no message_stop
    # a thinking block before the text, and a tool call after it (streamed as thinking_delta and
    # signature_delta, input_json_delta); thinking_tokens in usage.output_tokens_details
    thinking: str | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None
    thinking_tokens: int | None = None
    token_count: int = 42
    # seconds to wait before answering a request (a long non-streamed answer); then `status`, if not 200
    delay: float = 0.0
    # answer requests with this status and JSON body as is (a 202 Accepted, a 302 ...)
    raw_status_json: tuple[int, dict[str, Any]] | None = None
    # a streamed request is answered with these bytes as is (a provider's error events, ...)
    raw_stream: list[bytes] | None = None
    # then keep that stream open this many seconds before ending it (a provider slow to close)
    raw_stream_linger: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/v1"

    def start(self) -> FakeAnthropic:
        self.server = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()

    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cache_write_5m is not None or self.cache_write_1h is not None:
            five, hour = self.cache_write_5m or 0, self.cache_write_1h or 0
            usage["cache_creation_input_tokens"] = five + hour
            usage["cache_creation"] = {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour}
        else:
            usage["cache_creation_input_tokens"] = 0
        usage["cache_read_input_tokens"] = self.cache_read or 0
        usage["service_tier"] = "standard"
        if self.thinking_tokens is not None:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        return usage

    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.thinking is not None:
            blocks.append({"type": "thinking", "thinking": self.thinking, "signature": SIGNATURE})
        blocks.append({"type": "text", "text": " ".join(self.words)})
        if self.tool_call is not None:
            name, arguments = self.tool_call
            blocks.append({"type": "tool_use", "id": "toolu_fake", "name": name, "input": arguments})
        return blocks

    @property
    def stop_reason(self) -> str:
        return "end_turn" if self.tool_call is None else "tool_use"

    def _error(self, status: int) -> Response:
        kind = ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": f"{self.name} says {status}"}}
        return JSONResponse(body, status_code=status, headers={"request-id": "req_fake"})

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw_status_json is not None:
            return JSONResponse(self.raw_status_json[1], status_code=self.raw_status_json[0])
        if self.status != 200:
            return self._error(self.status)
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": self.content(),
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": "__USAGE__",
        }
        if not body.get("stream"):
            usage = self.usage_json if self.usage_json is not None else json.dumps(self.usage())
            return Response(json.dumps(message).replace('"__USAGE__"', usage), media_type="application/json")
        if self.raw_stream is not None:
            return StreamingResponse(self._raw_events(self.raw_stream), media_type="text/event-stream")
        return StreamingResponse(self._events(message), media_type="text/event-stream")

    async def _raw_events(self, pieces: list[bytes]) -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
        if self.raw_stream_linger:
            await asyncio.sleep(self.raw_stream_linger)

    async def _events(self, message: dict[str, Any]) -> AsyncIterator[bytes]:
        def event(name: str, payload: dict[str, Any] | str) -> bytes:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            return f"event: {name}\ndata: {data}\n\n".encode()

        def block_event(kind: str, index: int, **fields: Any) -> bytes:
            return event(kind, {"type": kind, "index": index, **fields})

        started = {**self.usage(), "output_tokens": 1}
        usage = self.usage_json if self.usage_json is not None else json.dumps(started)
        start = json.dumps({"type": "message_start", "message": {**message, "content": [], "stop_reason": None}})
        yield event("message_start", start.replace('"__USAGE__"', usage))
        index = 0
        if self.thinking is not None:
            yield block_event(
                "content_block_start", 0, content_block={"type": "thinking", "thinking": "", "signature": ""}
            )
            for piece in self.thinking.split(" "):
                yield block_event("content_block_delta", 0, delta={"type": "thinking_delta", "thinking": piece + " "})
            yield block_event("content_block_delta", 0, delta={"type": "signature_delta", "signature": SIGNATURE})
            yield block_event("content_block_stop", 0)
            index = 1
        yield block_event("content_block_start", index, content_block={"type": "text", "text": ""})
        yield event("ping", {"type": "ping"})
        for number, word in enumerate(self.words):
            if self.stall_after == number:
                await asyncio.sleep(3600)
            if self.drop_after == number:
                raise DroppedConnection(self.name)
            if self.error_after == number:
                yield event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            text = word if number == 0 else " " + word
            yield block_event("content_block_delta", index, delta={"type": "text_delta", "text": text})
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        yield block_event("content_block_stop", index)
        if self.tool_call is not None:
            index += 1
            name, arguments = self.tool_call
            call = {"type": "tool_use", "id": "toolu_fake", "name": name, "input": {}}
            yield block_event("content_block_start", index, content_block=call)
            encoded = json.dumps(arguments)
            for piece in (encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]):
                yield block_event(
                    "content_block_delta", index, delta={"type": "input_json_delta", "partial_json": piece}
                )
            yield block_event("content_block_stop", index)
        if self.delta_usage_json is not None:
            final = self.delta_usage_json
        else:
            counts = self.usage() if self.delta_usage else {"output_tokens": self.output_tokens}
            counts.pop("service_tier", None)
            counts.pop("cache_creation", None)
            if self.thinking_tokens is not None:
                counts["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
            final = json.dumps(counts)
        delta = {"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": None}}
        yield event("message_delta", json.dumps({**delta, "usage": "__USAGE__"}).replace('"__USAGE__"', final))
        if self.ends_with_stop:
            yield event("message_stop", {"type": "message_stop"})

    async def count_tokens(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.url.path})
        if self.status != 200:
            return self._error(self.status)
        return JSONResponse({"input_tokens": self.token_count})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            ]
        )

"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking the OpenAI chat API.

Each test sets how it behaves (status, latency, usage or none, streaming pace, a dropped
connection) and reads what it received.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Runs an ASGI app on uvicorn in a thread of its own, on a free port of 127.0.0.1."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server thread did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class DroppedConnection(Exception):
    """Raised inside a streaming body: uvicorn then cuts the connection mid-response."""


@dataclass
class FakeUpstream:
    name: str
    status: int = 200
    delay: float = 0.0
    usage: tuple[int, int] | None = (1000, 500)
    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake", "upstream."])
    chunk_delay: float = 0.0
    drop_after: int | None = None
    # the `usage` value as literal JSON text (NaN, 1e400, 10^5000, "12", [] ...); overrides `usage`
    usage_json: str | None = None
    # answer this body as is (non-streamed), with this content type
    raw_body: bytes | None = None
    raw_content_type: str = "application/json"
    # stream these bytes as is instead of well-formed chunks
    raw_stream: list[bytes] | None = None
    # answer these pieces as is, chunked (no Content-Length), with `raw_content_type`
    raw_chunks: list[bytes] | None = None
    raw_status: int = 200  # the status `raw_chunks` are answered with
    # answer a streamed request with a plain JSON completion (a provider that ignores `stream`)
    ignore_stream: bool = False
    # repeat the reply's words this many times (a huge non-streamed answer)
    repeat: int = 1
    # seconds to wait before the first streamed chunk; after `stall_after` words, wait forever
    first_delay: float = 0.0
    stall_after: int | None = None
    # refuse what OpenAI refuses: max_tokens for these reasoning models, an output cap above a
    # model's limit (model -> limit); opt-in per test
    reasoning_models: set[str] = field(default_factory=set)
    output_limits: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/v1"

    def _refusal(self, body: dict[str, Any]) -> JSONResponse | None:
        """OpenAI's 400s for an output cap the model does not take."""
        model = body.get("model")
        if model in self.reasoning_models and "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model."
                " Use 'max_completion_tokens' instead."
            )
            error = {"message": message, "type": "invalid_request_error", "param": "max_tokens"}
            return JSONResponse({"error": {**error, "code": "unsupported_parameter"}}, status_code=400)
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        limit = self.output_limits.get(str(model))
        if limit is not None and isinstance(cap, int) and cap > limit:
            message = (
                f"max_tokens is too large: {cap}. This model supports at most {limit} completion tokens,"
                " whereas you provided {cap}."
            )
            error = {"message": message, "type": "invalid_request_error", "param": "max_tokens"}
            return JSONResponse({"error": {**error, "code": "invalid_value"}}, status_code=400)
        return None

    def received_models(self) -> list[str]:
        return [r["body"].get("model") for r in self.requests]

    def _dump(self, payload: dict[str, Any]) -> str:
        """The payload's JSON, with `usage_json` spliced in verbatim as its usage."""
        if self.usage_json is None:
            return json.dumps(payload)
        return json.dumps({**payload, "usage": "__USAGE__"}).replace('"__USAGE__"', self.usage_json)

    def _usage(self) -> dict[str, int] | None:
        if self.usage_json is not None:
            return {}  # replaced by _dump
        if self.usage is None:
            return None
        prompt, completion = self.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            error = {"error": {"message": f"{self.name} says {self.status}", "type": "upstream", "code": None}}
            return JSONResponse(error, status_code=self.status)
        if (refused := self._refusal(body)) is not None:
            return refused
        text = " ".join(self.words * self.repeat)
        if self.raw_body is not None:
            return Response(self.raw_body, media_type=self.raw_content_type)
        if self.raw_chunks is not None:
            pieces = self.raw_chunks

            async def chunked() -> AsyncIterator[bytes]:
                for piece in pieces:
                    yield piece

            return StreamingResponse(chunked(), status_code=self.raw_status, media_type=self.raw_content_type)
        if not body.get("stream") or self.ignore_stream:
            payload: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }
            if (usage := self._usage()) is not None:
                payload["usage"] = usage
            return Response(self._dump(payload), media_type="application/json")
        return StreamingResponse(self._chunks(body), media_type="text/event-stream")

    async def _chunks(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": body.get("model"),
        }
        wants_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if self.first_delay:
            await asyncio.sleep(self.first_delay)
        if self.raw_stream is not None:
            for piece in self.raw_stream:
                yield piece
            return
        for index, word in enumerate(self.words):
            if self.stall_after is not None and index == self.stall_after:
                await asyncio.sleep(3600)
            if self.drop_after is not None and index == self.drop_after:
                raise DroppedConnection(self.name)
            piece = word if index == 0 else " " + word
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield f"data: {json.dumps({**base, 'choices': [stop]})}\n\n".encode()
        if wants_usage and (usage := self._usage()) is not None:
            yield f"data: {self._dump({**base, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

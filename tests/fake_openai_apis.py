"""A fake OpenAI provider for the embeddings and legacy completions APIs: a real HTTP server on
127.0.0.1 speaking both as OpenAI does.

Embeddings come as JSON floats, or (`encoding_format: "base64"`, what the openai SDK asks for by
default and decodes) as the base64 of the vector's little-endian float32 bytes. Completions come
whole, or as server-sent events: `text_completion` chunks with `text` choices, `usage: null` on
each when `stream_options.include_usage`, then a usage chunk with no choices, then [DONE].

Each test sets the usage reported (or none, or literal JSON), a status, a dropped connection, and
reads what the fake received.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fake_upstream import DroppedConnection, ServerThread

DIMENSIONS = 8  # when the request has no `dimensions`


def vector(index: int, dimensions: int) -> list[float]:
    """The fake's embedding of input `index`: exact in float32, so both encodings give the same."""
    return [(index + 1) / 4 + position / 8 for position in range(dimensions)]


def float32_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@dataclass
class FakeOpenAIAPIs:
    name: str = "openai"
    api: str = "openai"
    status: int = 200
    # embeddings: the prompt tokens reported; completions: (prompt, completion) tokens reported
    embedding_tokens: int | None = 10
    completion_usage: tuple[int, int] | None = (10, 5)
    # the `usage` value as literal JSON text; overrides both
    usage_json: str | None = None
    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake", "completions."])
    chunk_delay: float = 0.0
    drop_after: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/v1"

    def start(self) -> FakeOpenAIAPIs:
        self.server = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()

    def _dump(self, payload: dict[str, Any]) -> str:
        if self.usage_json is None or "usage" not in payload:
            return json.dumps(payload)
        return json.dumps({**payload, "usage": "__USAGE__"}).replace('"__USAGE__"', self.usage_json)

    async def _received(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        return body

    def _refusal(self) -> Response:
        error = {"error": {"message": f"{self.name} says {self.status}", "type": "upstream", "code": None}}
        return JSONResponse(error, status_code=self.status)

    async def embeddings(self, request: Request) -> Response:
        body = await self._received(request)
        if self.status != 200:
            return self._refusal()
        given = body["input"]
        count = 1 if isinstance(given, str) or isinstance(given[0], int) else len(given)
        dimensions = body.get("dimensions") or DIMENSIONS
        base64_wanted = body.get("encoding_format") == "base64"
        data = []
        for index in range(count):
            values = vector(index, dimensions)
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": float32_base64(values) if base64_wanted else values,
                }
            )
        payload: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if self.usage_json is not None or self.embedding_tokens is not None:
            tokens = self.embedding_tokens or 0
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Response(self._dump(payload), media_type="application/json")

    def _usage(self) -> dict[str, int] | None:
        if self.usage_json is not None:
            return {}  # replaced by _dump
        if self.completion_usage is None:
            return None
        prompt, completion = self.completion_usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def completions(self, request: Request) -> Response:
        body = await self._received(request)
        if self.status != 200:
            return self._refusal()
        prompt = body["prompt"]
        prompts = [prompt] if isinstance(prompt, str) or isinstance(prompt[0], int) else prompt
        if body.get("stream"):
            return StreamingResponse(self._chunks(body), media_type="text/event-stream")
        text = " ".join(self.words)
        choices = [
            {
                "text": (given if body.get("echo") and isinstance(given, str) else "") + text,
                "index": index,
                "logprobs": None,
                "finish_reason": "length",
            }
            for index, given in enumerate(p for p in prompts for _ in range(body.get("n") or 1))
        ]
        payload: dict[str, Any] = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": 1,
            "model": body["model"],
            "choices": choices,
            "system_fingerprint": None,
        }
        if (usage := self._usage()) is not None:
            payload["usage"] = usage
        return Response(self._dump(payload), media_type="application/json")

    async def _chunks(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        base = {"id": "cmpl-fake", "object": "text_completion", "created": 1, "model": body["model"]}
        wants_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if wants_usage:
            base["usage"] = None

        def chunk(text: str, finish_reason: str | None) -> bytes:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
            return f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode()

        for index, word in enumerate(self.words):
            if self.drop_after is not None and index == self.drop_after:
                raise DroppedConnection(self.name)
            yield chunk(word if index == 0 else " " + word, None)
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        yield chunk("", "length")
        if wants_usage and (usage := self._usage()) is not None:
            yield f"data: {self._dump({**base, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
            ]
        )

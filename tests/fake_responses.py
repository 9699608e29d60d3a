"""A fake provider of OpenAI's Responses API: a real HTTP server on 127.0.0.1.

Answers `POST /v1/responses` as OpenAI does: a `response` object, or the SSE events in OpenAI's
order (response.created, response.in_progress, output_item.added, content_part.added,
output_text.delta ..., output_text.done, content_part.done, output_item.done, response.completed),
each `event: <type>` with its `sequence_number`. Each test sets the usage (cached and reasoning
tokens included, or any JSON), pacing, a dropped connection or a stall, and reads what it received.
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

RESPONSE_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
MESSAGE_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
REASONING_ID = "rs_67ccd2bf0f7c8190a8d0b2a1b3c4d5e60bb6a6b452d3795b"


@dataclass
class Usage:
    input: int = 1000
    output: int = 500
    cached: int = 0
    reasoning: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        }


@dataclass
class FakeResponses:
    name: str
    api: str = "openai"
    status: int = 200
    usage: Usage | None = field(default_factory=Usage)
    # the usage as literal JSON text (NaN, 1e400, "12", [] ...); overrides `usage`
    usage_json: str | None = None
    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake", "responses."])
    chunk_delay: float = 0.0
    drop_after: int | None = None  # cut the connection before this word
    stall_after: int | None = None  # wait forever before this word
    terminal: str = "response.completed"  # or response.incomplete; "" ends the stream without one
    # answer with a call of this function (name, arguments JSON) instead of a message
    tool_call: tuple[str, str] | None = None
    # seconds to wait before answering a request (a long non-streamed answer); then `status`, if not 200
    delay: float = 0.0
    # answer requests with this status and JSON body as is (a 202 Accepted, a 302 ...)
    raw_status_json: tuple[int, dict[str, Any]] | None = None
    # a streamed request is answered with these bytes as is (a provider's error events, ...)
    raw_stream: list[bytes] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/v1"

    def start(self) -> FakeResponses:
        self.server = ServerThread(Starlette(routes=[Route("/v1/responses", self.create, methods=["POST"])])).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()

    def _dump(self, payload: dict[str, Any], usage_at: tuple[str, ...]) -> str:
        """The payload's JSON with its usage (at `usage_at`) spliced in verbatim from `usage_json`."""
        if self.usage_json is None:
            return json.dumps(payload)
        target = payload
        for key in usage_at:
            target = target[key]
        target["usage"] = "__USAGE__"
        return json.dumps(payload).replace('"__USAGE__"', self.usage_json)

    def _reasoning_item(self) -> dict[str, Any] | None:
        if self.usage is None or not self.usage.reasoning:
            return None
        return {"id": REASONING_ID, "type": "reasoning", "summary": []}

    def _function_call(self, arguments: str, status: str) -> dict[str, Any]:
        assert self.tool_call is not None
        return {
            "id": "fc_67ccd3acc8048190a0b9a5a4ea6c0a4b",
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
            "name": self.tool_call[0],
        }

    @staticmethod
    def _message(text: str, status: str) -> dict[str, Any]:
        content = [] if status == "in_progress" else [_text_part(text)]
        return {"id": MESSAGE_ID, "type": "message", "status": status, "content": content, "role": "assistant"}

    def _response(self, body: dict[str, Any], status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        done = status != "in_progress"
        return {
            "id": RESPONSE_ID,
            "object": "response",
            "created_at": 1741476542,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": (self.usage.as_json() if self.usage is not None else None) if done else None,
            "user": None,
            "metadata": {},
        }

    async def create(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw_status_json is not None:
            return JSONResponse(self.raw_status_json[1], status_code=self.raw_status_json[0])
        if self.status != 200:
            error = {"error": {"message": f"{self.name} says {self.status}", "type": "upstream", "code": None}}
            return JSONResponse(error, status_code=self.status)
        if body.get("stream") and self.raw_stream is not None:
            return StreamingResponse(iter(self.raw_stream), media_type="text/event-stream")
        if body.get("stream"):
            return StreamingResponse(self._events(body), media_type="text/event-stream")
        text = " ".join(self.words)
        answer = self._message(text, "completed")
        if self.tool_call is not None:
            answer = self._function_call(self.tool_call[1], "completed")
        output = [item for item in (self._reasoning_item(),) if item] + [answer]
        status = "incomplete" if self.terminal == "response.incomplete" else "completed"
        return Response(self._dump(self._response(body, status, output), ()), media_type="application/json")

    async def _events(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        sequence = iter(range(1_000_000))

        def event(kind: str, payload: dict[str, Any], usage_at: tuple[str, ...] | None = None) -> bytes:
            data = {"type": kind, **payload, "sequence_number": next(sequence)}
            dumped = json.dumps(data) if usage_at is None else self._dump(data, usage_at)
            return f"event: {kind}\ndata: {dumped}\n\n".encode()

        yield event("response.created", {"response": self._response(body, "in_progress", [])})
        yield event("response.in_progress", {"response": self._response(body, "in_progress", [])})
        output: list[dict[str, Any]] = []
        if (reasoning := self._reasoning_item()) is not None:
            yield event("response.output_item.added", {"output_index": 0, "item": reasoning})
            yield event("response.output_item.done", {"output_index": 0, "item": reasoning})
            output.append(reasoning)
        index = len(output)
        if self.tool_call is not None:
            async for chunk in self._call_events(event, index):
                yield chunk
            output.append(self._function_call(self.tool_call[1], "completed"))
            final = self._response(body, "completed", output)
            yield event(self.terminal, {"response": final}, ("response",))
            return
        at = {"item_id": MESSAGE_ID, "output_index": index}
        yield event("response.output_item.added", {"output_index": index, "item": self._message("", "in_progress")})
        yield event("response.content_part.added", {**at, "content_index": 0, "part": _text_part("")})
        text = ""
        for number, word in enumerate(self.words):
            if self.stall_after is not None and number == self.stall_after:
                await asyncio.sleep(3600)
            if self.drop_after is not None and number == self.drop_after:
                raise DroppedConnection(self.name)
            piece = word if number == 0 else " " + word
            text += piece
            yield event("response.output_text.delta", {**at, "content_index": 0, "delta": piece, "logprobs": []})
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        yield event("response.output_text.done", {**at, "content_index": 0, "text": text, "logprobs": []})
        yield event("response.content_part.done", {**at, "content_index": 0, "part": _text_part(text)})
        message = self._message(text, "completed")
        yield event("response.output_item.done", {"output_index": index, "item": message})
        status = "incomplete" if self.terminal == "response.incomplete" else "completed"
        final = self._response(body, status, [*output, message])
        if self.terminal:
            yield event(self.terminal, {"response": final}, ("response",))

    async def _call_events(self, event: Any, index: int) -> AsyncIterator[bytes]:
        """A function call's events: its arguments streamed in two deltas."""
        assert self.tool_call is not None
        arguments = self.tool_call[1]
        item = self._function_call("", "in_progress")
        at = {"item_id": item["id"], "output_index": index}
        yield event("response.output_item.added", {"output_index": index, "item": item})
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            yield event("response.function_call_arguments.delta", {**at, "delta": piece})
        yield event("response.function_call_arguments.done", {**at, "arguments": arguments})
        done = self._function_call(arguments, "completed")
        yield event("response.output_item.done", {"output_index": index, "item": done})


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

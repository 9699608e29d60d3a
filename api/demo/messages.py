"""The demo's Anthropic Messages API: messages (streamed as Anthropic streams them) and
count_tokens, usage split into input, cache reads and cache writes as Anthropic reports it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.demo.counts import anthropic_usage, fit, prompt_tokens, reply_to, stream_pieces, text_of
from api.demo.wire import BadRequest, anthropic_error, named_event, optional_int, read_body, string_field


def _messages(body: dict[str, Any]) -> list[Any]:
    """`system` and `messages` as chat-shaped messages (what the prompt count reads)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: must be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise BadRequest(f"messages.{index}.content: must be a string or an array of content blocks")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise BadRequest("system: must be a string or an array of text blocks")
    return ([{"role": "system", "content": system}] if system else []) + messages


def _said(messages: list[Any]) -> str:
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return text_of(last)


async def count_tokens(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        string_field(body, "model")
        messages = _messages(body)
    except BadRequest as error:
        return anthropic_error(error)
    return JSONResponse({"input_tokens": prompt_tokens(messages, size)})


async def messages(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        model = string_field(body, "model")
        chat = _messages(body)
        limit = optional_int(body, "max_tokens", 1)
        if limit is None:
            raise BadRequest("max_tokens: Field required")
    except BadRequest as error:
        return anthropic_error(error)
    reply = fit(reply_to(_said(chat)), limit)
    usage = anthropic_usage(prompt_tokens(chat, size), reply.tokens, body)
    stop = {"stop_reason": "max_tokens" if reply.cut else "end_turn", "stop_sequence": None}
    message = {
        "id": f"msg_demo{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        **stop,
        "usage": usage,
    }
    if not body.get("stream"):
        return JSONResponse(message)
    # message_start carries the input side and a first output token; message_delta the cumulative
    # totals (Anthropic's own events do both)
    opening = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": min(1, reply.tokens)}}
    totals = {key: usage[key] for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}

    def events() -> list[tuple[str, dict[str, Any]]]:
        return [
            ("message_start", {"message": opening}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {}),
            *(
                ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
                for piece in stream_pieces(reply.text)
            ),
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": stop, "usage": {**totals, "output_tokens": reply.tokens}}),
            ("message_stop", {}),
        ]

    async def stream() -> AsyncIterator[bytes]:
        for kind, payload in events():
            yield named_event(kind, payload)

    return StreamingResponse(stream(), media_type="text/event-stream")

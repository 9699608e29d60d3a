"""The demo's Responses API (OpenAI shape): one output message, streamed as OpenAI streams it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.demo.counts import REASONING_TOKENS, cached_tokens, fit, prompt_tokens, reply_to, stream_pieces, text_of
from api.demo.wire import BadRequest, named_event, openai_error, optional_int, optional_object, read_body, string_field

LEAST_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens


def _messages(body: dict[str, Any]) -> list[Any]:
    """`instructions` and `input` as chat-shaped messages (what the prompt count reads)."""
    given = body.get("input")
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    if not isinstance(given, list) or not given or not all(isinstance(item, dict) for item in given):
        raise BadRequest("'input' must be a string or a non-empty array of input item objects", "input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("'instructions' must be a string", "instructions")
    return ([{"role": "system", "content": instructions}] if instructions else []) + given


def _usage(prompt: int, output: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached_tokens(prompt), "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


async def responses(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        model = string_field(body, "model")
        messages = _messages(body)
        limit = optional_int(body, "max_output_tokens", LEAST_OUTPUT_TOKENS)
        reasoning = REASONING_TOKENS if optional_object(body, "reasoning") else 0
        optional_object(body, "metadata")
    except BadRequest as error:
        return openai_error(error)
    said = next(
        (m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role", "user") == "user"), ""
    )
    reply = fit(reply_to(text_of(said)), None if limit is None else limit - reasoning)
    prompt, output = prompt_tokens(messages, size), reply.tokens + reasoning
    response_id, item_id = f"resp_demo{uuid.uuid4().hex}", f"msg_demo{uuid.uuid4().hex}"
    status = "incomplete" if reply.cut else "completed"
    text_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": reply.text}
    item = {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [text_part]}
    created = int(time.time())
    final = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": None if reply.cut else created,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if reply.cut else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": limit,
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": optional_object(body, "reasoning").get("effort"), "summary": None},
        "store": body.get("store") is not False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(prompt, output, reasoning),
        "user": None,
    }
    if not body.get("stream"):
        return JSONResponse(final)
    start = {**final, "status": "in_progress", "completed_at": None, "incomplete_details": None}
    start.update(output=[], usage=None)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def events() -> list[tuple[str, dict[str, Any]]]:
        empty_part, opened = {**text_part, "text": ""}, {**item, "status": "in_progress", "content": []}
        return [
            ("response.created", {"response": start}),
            ("response.in_progress", {"response": start}),
            ("response.output_item.added", {"output_index": 0, "item": opened}),
            ("response.content_part.added", {**where, "part": empty_part}),
            *(("response.output_text.delta", {**where, "delta": p, "logprobs": []}) for p in stream_pieces(reply.text)),
            ("response.output_text.done", {**where, "text": reply.text, "logprobs": []}),
            ("response.content_part.done", {**where, "part": text_part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            (f"response.{status}", {"response": final}),
        ]

    async def stream() -> AsyncIterator[bytes]:
        for number, (kind, payload) in enumerate(events()):
            yield named_event(kind, {"sequence_number": number, **payload})

    return StreamingResponse(stream(), media_type="text/event-stream")

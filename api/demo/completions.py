"""The demo's chat completions and legacy completions (OpenAI shapes, streamed and not)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.demo.counts import (
    Reply,
    cached_tokens,
    fit,
    plain_prompt_tokens,
    prompt_tokens,
    reply_to,
    stream_pieces,
    text_of,
)
from api.demo.wire import BadRequest, data_line, openai_error, optional_int, optional_object, read_body, string_field

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
LEGACY_MAX_TOKENS = 16  # the legacy completions API's default max_tokens


def openai_usage(prompt: int, reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.tokens,
        "total_tokens": prompt + reply.tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens(prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _wants_usage(body: dict[str, Any]) -> bool:
    return optional_object(body, "stream_options").get("include_usage") is True


def _stream(
    base: dict[str, Any], choices: list[tuple[dict[str, Any], str | None]], usage: dict[str, Any] | None
) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for choice, finish in choices:
            yield data_line({**base, "choices": [{"index": 0, **choice, "finish_reason": finish}]})
        if usage is not None:
            yield data_line({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def chat_completions(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        model = string_field(body, "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array", "messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
                raise BadRequest(f"messages[{index}] must be an object with a valid 'role'", f"messages[{index}]")
        limit = optional_int(body, "max_completion_tokens", 1) or optional_int(body, "max_tokens", 1)
        wants_usage = _wants_usage(body)
    except BadRequest as error:
        return openai_error(error)
    said = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), "")
    reply = fit(reply_to(text_of(said)), limit)
    prompt, finish = prompt_tokens(messages, size), "length" if reply.cut else "stop"
    base = {"id": f"chatcmpl-demo-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        message = {"role": "assistant", "content": reply.text, "refusal": None}
        return JSONResponse(
            {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": openai_usage(prompt, reply),
            }
        )
    pieces = stream_pieces(reply.text)
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"delta": {"role": "assistant", "content": piece} if index == 0 else {"content": piece}}, None)
        for index, piece in enumerate(pieces)
    ]
    usage = openai_usage(prompt, reply) if wants_usage else None
    return _stream({**base, "object": "chat.completion.chunk"}, [*deltas, ({"delta": {}}, finish)], usage)


def _prompts(body: dict[str, Any]) -> list[str | list[int]]:
    """The legacy API's `prompt`: a string, strings, a token array or token arrays."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(_is_token(t) for t in prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) or _token_array(p) for p in prompt):
        return list(prompt)
    raise BadRequest("'prompt' must be a string, an array of strings, or token arrays", "prompt")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_token(t) for t in value)


async def completions(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        model = string_field(body, "model")
        prompts = _prompts(body)
        limit = optional_int(body, "max_tokens", 1) or LEGACY_MAX_TOKENS
        wants_usage = _wants_usage(body)
    except BadRequest as error:
        return openai_error(error)
    last = prompts[-1]
    reply = fit(reply_to(last if isinstance(last, str) else f"{len(last)} tokens"), limit)
    prompt, finish = plain_prompt_tokens(prompts, size), "length" if reply.cut else "stop"
    base = {
        "id": f"cmpl-demo-{uuid.uuid4().hex[:12]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if not body.get("stream"):
        choice = {"index": 0, "text": reply.text, "logprobs": None, "finish_reason": finish}
        return JSONResponse({**base, "choices": [choice], "usage": openai_usage(prompt, reply)})
    texts: list[tuple[dict[str, Any], str | None]] = [
        ({"text": piece, "logprobs": None}, None) for piece in stream_pieces(reply.text)
    ]
    usage = openai_usage(prompt, reply) if wants_usage else None
    return _stream(base, [*texts, ({"text": "", "logprobs": None}, finish)], usage)

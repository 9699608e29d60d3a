"""The built-in `demo` provider: an OpenAI-compatible chat endpoint with deterministic replies.

It lets a newcomer make a first metered call with no provider account: `ledger serve` mounts it
at /demo/v1 when LEDGER_PROVIDERS is empty and routes to it over HTTP like any real provider.
Its models are priced like the real ones (model_prices rows with provider `demo`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ledger.gateway.tokens import completion_tokens_estimate, prompt_tokens_estimate

MOUNT_PATH = "/demo/v1"


def reply_to(messages: list[Any]) -> str:
    last = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), "")
    said = last if isinstance(last, str) else json.dumps(last)
    return f"Hello from the demo provider. You said: {said[:200]}"


def _usage(messages: list[Any], text: str) -> dict[str, int]:
    prompt, completion = prompt_tokens_estimate(messages), completion_tokens_estimate(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


async def chat_completions(request: Request) -> Response:
    # reachable by anyone at MOUNT_PATH: malformed input is a 400, like a real provider's
    try:
        body = json.loads(await request.body(), parse_constant=_not_json)
    except (ValueError, RecursionError):
        body = None
    messages = body.get("messages") if isinstance(body, dict) else None
    options = body.get("stream_options") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(messages, list) or not isinstance(options or {}, dict):
        error = {"message": "expected a JSON chat request", "type": "invalid_request_error", "param": None}
        return JSONResponse({"error": {**error, "code": "invalid_request"}}, status_code=400)
    text = reply_to(messages)
    completion_id, created, model = (
        f"chatcmpl-demo-{uuid.uuid4().hex[:12]}",
        int(time.time()),
        body.get("model"),
    )
    if not body.get("stream"):
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": _usage(messages, text),
            }
        )
    wants_usage = (options or {}).get("include_usage") is True

    async def chunks() -> AsyncIterator[bytes]:
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode()
        final = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield f"data: {json.dumps({**base, 'choices': [final]})}\n\n".encode()
        if wants_usage:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(messages, text)})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


def create_demo_app() -> Starlette:
    return Starlette(routes=[Route("/chat/completions", chat_completions, methods=["POST"])])

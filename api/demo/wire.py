"""What every demo endpoint shares on the wire: reading a body that may be anything, each API's
error shape, and server-sent events."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class BadRequest(ValueError):
    """A request the demo refuses, as the real API would: a 400 in that API's own error shape."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


async def read_body(request: Request) -> tuple[dict[str, Any], int]:
    """The request's JSON object and its size in bytes (the ceiling of every prompt count)."""
    raw = await request.body()
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body, len(raw)


def openai_error(error: BadRequest) -> JSONResponse:
    detail = {"message": str(error), "type": "invalid_request_error", "param": error.param, "code": None}
    return JSONResponse({"error": detail}, status_code=400)


def anthropic_error(error: BadRequest) -> JSONResponse:
    detail = {"type": "invalid_request_error", "message": str(error)}
    return JSONResponse({"type": "error", "error": detail}, status_code=400)


def data_line(payload: Any) -> bytes:
    """One OpenAI chat/completions stream chunk (no event name)."""
    return f"data: {json.dumps(payload)}\n\n".encode()


def named_event(kind: str, payload: dict[str, Any]) -> bytes:
    """One event as the Responses and Messages APIs send it: its type named twice."""
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


def string_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{key}' must be a non-empty string", key)
    return value


def optional_int(body: dict[str, Any], key: str, least: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise BadRequest(f"'{key}' must be an integer of at least {least}", key)
    return value


def optional_object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"'{key}' must be an object", key)
    return value

"""The demo's embeddings (OpenAI shape): deterministic unit vectors, `dimensions` honoured, as
floats or as base64 of little-endian float32s (what the openai SDK asks for by default)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.demo.counts import plain_prompt_tokens
from api.demo.wire import BadRequest, openai_error, optional_int, read_body, string_field

DEFAULT_DIMENSIONS = 1536  # text-embedding-3-small's and ada-002's
MOST_DIMENSIONS = 3072  # text-embedding-3-large's
MOST_INPUTS = 2048  # OpenAI's limit on inputs per request
# The demo's own limit on the numbers in one answer (inputs x dimensions): it is public at
# /demo/v1, and 2,048 inputs of 3,072 dimensions would be ~120 MB of JSON to compute and send
MOST_VALUES = 2**20


def vector(item: str | list[int], dimensions: int) -> list[float]:
    """The same input always gets the same unit vector (from a hash of it: no model involved)."""
    seed = json.dumps(item).encode()
    raw = struct.unpack(f"<{dimensions}I", hashlib.shake_256(seed).digest(4 * dimensions))
    values = [value / 2**31 - 1 for value in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _embedded(items: list[str | list[int]], dimensions: int, as_base64: bool) -> list[dict[str, Any]]:
    data = []
    for index, item in enumerate(items):
        values = vector(item, dimensions)
        encoded: list[float] | str = values
        if as_base64:  # little-endian float32s, as OpenAI sends them
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return data


def _inputs(body: dict[str, Any]) -> list[str | list[int]]:
    given = body.get("input")
    if isinstance(given, str) or (isinstance(given, list) and given and all(map(_is_token, given))):
        given = [given]  # one input
    if not isinstance(given, list) or not given or len(given) > MOST_INPUTS:
        raise BadRequest(f"'input' must be a string, token array, or an array of 1 to {MOST_INPUTS} of them", "input")
    for item in given:
        if not (isinstance(item, str) and item) and not (isinstance(item, list) and item and all(map(_is_token, item))):
            raise BadRequest("each 'input' must be a non-empty string or token array", "input")
    return given


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def embeddings(request: Request) -> Response:
    try:
        body, size = await read_body(request)
        model = string_field(body, "model")
        items = _inputs(body)
        dimensions = optional_int(body, "dimensions", 1) or DEFAULT_DIMENSIONS
        if dimensions > MOST_DIMENSIONS:
            raise BadRequest(f"'dimensions' must be at most {MOST_DIMENSIONS}", "dimensions")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise BadRequest("'encoding_format' must be 'float' or 'base64'", "encoding_format")
        if len(items) * dimensions > MOST_VALUES:
            raise BadRequest(f"the demo provider answers at most {MOST_VALUES} numbers (inputs x dimensions)", "input")
    except BadRequest as error:
        return openai_error(error)
    # hashing is CPU work: off the event loop the whole service shares
    data = await run_in_threadpool(_embedded, items, dimensions, encoding == "base64")
    prompt = plain_prompt_tokens(items, size)
    usage = {"prompt_tokens": prompt, "total_tokens": prompt}
    return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

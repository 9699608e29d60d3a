"""The one shape of every metered endpoint: read the body, check it through the API's adapter,
let the metered engine serve it, render its answer.

Everything about money (hold, route, forward, settle) is ledger/gateway/engine.py's; an endpoint
only names its adapter's parser (and how its clients send their key). A refusal is a LedgerError
or ApiError, rendered by the one exception handler in the API's own error shape.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from api.auth import bearer_key
from api.errors import ApiError, error_response, speaks_anthropic
from api.jsonresponse import LedgerJSONResponse
from api.params import json_object
from api.services import services
from api.streaming import MeteredStream
from ledger.errors import LedgerError
from ledger.gateway.adapters.chat import check_size
from ledger.gateway.engine import Completion, MeteredCall, Outcome, UpstreamAnswer, unauthenticated
from ledger.logs import request_id_var

Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def render(outcome: Outcome, path: str) -> Response:
    if isinstance(outcome, Completion):
        return LedgerJSONResponse(outcome.payload, headers=outcome.headers)
    if isinstance(outcome, UpstreamAnswer):
        return upstream_refusal(outcome, path)
    return MeteredStream.of(outcome)


def upstream_refusal(answer: UpstreamAnswer, path: str) -> Response:
    """The provider's own refusal (a 4xx; nothing was charged): passed through when it is an error
    in the API's own shape, else (text, HTML, another API's shape) told in that shape, with the
    provider's words, so the client's SDK can read it."""
    try:
        body = json.loads(answer.content)
    except ValueError:
        body = None
    in_shape = isinstance(body, dict) and isinstance(body.get("error"), dict)
    if answer.status_code < 400 or (in_shape and (not speaks_anthropic(path) or body.get("type") == "error")):
        return Response(
            answer.content, status_code=answer.status_code, media_type=answer.content_type, headers=answer.headers
        )
    said = answer.content.decode("utf-8", "replace").strip()[:500] or "no explanation"
    refusal = ApiError(
        answer.status_code,
        f"The provider refused the request (HTTP {answer.status_code}): {said}. Nothing was charged.",
        code="upstream_refused",
        headers=answer.headers,
    )
    return error_response(refusal, path)


async def checked_body(request: Request, key: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """The request's JSON body, size-checked and parsed by `parse`, read only once the key is known
    (from the headers alone: KeyGate); a refusal (ApiError or LedgerError) is raised after the key
    is checked, so a wrong key is told first."""
    found = services(request)
    if not await found.key_gate.admits(found.pool, key):
        raise unauthenticated()
    try:
        raw = await request.body()
        check_size(raw, services(request).settings.max_chat_json_separators)
        return parse(json_object(raw))
    except (ApiError, LedgerError) as refused:
        await services(request).gateway.refuse_after_authenticating(key, refused)
        raise


def request_id() -> str:
    return request_id_var.get() or f"req_{uuid.uuid4().hex}"


def metered_endpoint(
    parse: Callable[[dict[str, Any], Request], MeteredCall],
    key_of: Callable[[Request], str] = bearer_key,
) -> Endpoint:
    """The endpoint of one metered API: `parse(body, request)` is its adapter's parser (it raises
    InvalidRequest for what it refuses), `key_of(request)` the gateway key the client sent."""

    async def endpoint(request: Request) -> Response:
        key = key_of(request)
        call = await checked_body(request, key, lambda body: parse(body, request))
        power_level = request.headers.get("x-power-level") or None
        client_ip = request.client.host if request.client else None
        outcome = await services(request).gateway.serve(key, call, power_level, request_id(), client_ip)
        return render(outcome, request.url.path)

    return endpoint

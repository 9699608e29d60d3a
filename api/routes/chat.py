"""POST /v1/chat/completions: parse, let the metered engine serve it, render its answer.

Everything about money (hold, route, forward, settle) is ledger/gateway/engine.py's; this route
only reads the body, checks its shape through the chat adapter, and turns the engine's outcome
(or refusal: a LedgerError, rendered by the one exception handler) into an HTTP response.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from api.auth import bearer_key
from api.errors import ApiError
from api.jsonresponse import LedgerJSONResponse
from api.params import json_object
from api.services import services
from api.streaming import MeteredStream
from ledger.errors import LedgerError
from ledger.gateway.adapters.chat import check_size, parse_chat_request
from ledger.gateway.engine import Completion, MeteredCall, Outcome, UpstreamAnswer
from ledger.logs import request_id_var


def render(outcome: Outcome) -> Response:
    if isinstance(outcome, Completion):
        return LedgerJSONResponse(outcome.payload, headers=outcome.headers)
    if isinstance(outcome, UpstreamAnswer):
        return Response(
            outcome.content, status_code=outcome.status_code, media_type=outcome.content_type, headers=outcome.headers
        )
    return MeteredStream.of(outcome)


async def chat_completions(request: Request) -> Response:
    gateway = services(request).gateway
    key = bearer_key(request)
    try:
        raw = await request.body()
        check_size(raw, services(request).settings.max_chat_json_separators)
        call: MeteredCall = parse_chat_request(json_object(raw))
    except (ApiError, LedgerError) as refused:
        await gateway.refuse_after_authenticating(key, refused)
        raise
    request_id = request_id_var.get() or f"req_{uuid.uuid4().hex}"
    power_level = request.headers.get("x-power-level") or None
    return render(await gateway.serve(key, call, power_level, request_id))

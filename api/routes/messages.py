"""POST /v1/messages (Anthropic's Messages API, the metered engine's adapter) and
POST /v1/messages/count_tokens (free at Anthropic: passed through, nothing held or charged).

The gateway key comes as `x-api-key` (the Anthropic SDK) or a Bearer token; errors are in
Anthropic's shape (api/errors.py renders every error on these paths so)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from api.auth import anthropic_key
from api.errors import ApiError
from api.params import json_object
from api.routes.metered import metered_endpoint, render
from api.services import services
from ledger.errors import LedgerError
from ledger.gateway.adapters.chat import check_size
from ledger.gateway.adapters.messages import client_headers, parse_messages_request
from ledger.gateway.count_tokens import count_tokens as count
from ledger.logs import request_id_var


def _anthropic_headers(request: Request) -> tuple[str | None, list[str]]:
    return request.headers.get("anthropic-version"), request.headers.getlist("anthropic-beta")


messages = metered_endpoint(
    lambda body, request: parse_messages_request(body, *_anthropic_headers(request)), key_of=anthropic_key
)


async def count_tokens(request: Request) -> Response:
    gateway = services(request).gateway
    key = anthropic_key(request)
    try:
        raw = await request.body()
        check_size(raw, services(request).settings.max_chat_json_separators)
        body = json_object(raw)
        headers = client_headers(*_anthropic_headers(request))
    except (ApiError, LedgerError) as refused:
        await gateway.refuse_after_authenticating(key, refused)
        raise
    request_id = request_id_var.get() or f"req_{uuid.uuid4().hex}"
    return render(await count(gateway, key, body, headers, request_id), request.url.path)

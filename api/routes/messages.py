"""POST /v1/messages (Anthropic's Messages API, the metered engine's adapter) and
POST /v1/messages/count_tokens (free at Anthropic: passed through, nothing held or charged).

The gateway key comes as `x-api-key` (the Anthropic SDK) or a Bearer token; errors are in
Anthropic's shape (api/errors.py renders every error on these paths so)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.auth import anthropic_key
from api.routes.metered import checked_body, metered_endpoint, render, request_id
from api.services import services
from ledger.gateway.adapters.messages import client_headers, parse_messages_request
from ledger.gateway.count_tokens import count_tokens as count


def _anthropic_headers(request: Request) -> tuple[str | None, list[str]]:
    return request.headers.get("anthropic-version"), request.headers.getlist("anthropic-beta")


messages = metered_endpoint(
    lambda body, request: parse_messages_request(body, *_anthropic_headers(request)), key_of=anthropic_key
)


async def count_tokens(request: Request) -> Response:
    key = anthropic_key(request)
    body, headers = await checked_body(request, key, lambda body: (body, client_headers(*_anthropic_headers(request))))
    return render(await count(services(request).gateway, key, body, headers, request_id()), request.url.path)

"""POST /v1/messages/count_tokens: Anthropic counts a prompt's tokens for free, so nothing is held,
charged or logged; the request goes to the first provider speaking Anthropic's API that prices the
model, with the platform's key, and its answer is passed through."""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import InvalidRequest, ModelNotFound, UpstreamFailed
from ledger.gateway.adapters.messages import COUNT_TOKENS_PATH
from ledger.gateway.engine import Gateway, UpstreamAnswer
from ledger.gateway.routing import Route
from ledger.gateway.upstream import AllProvidersFailed, UpstreamBodyTooLarge, open_first


def _routes(gateway: Gateway, prices: dict[str, Any]) -> list[Route]:
    """The providers speaking Anthropic's API that price the model, in LEDGER_PROVIDERS' order."""
    return [
        Route(name, config, prices[name], None)
        for name, config in gateway.providers.items()
        if config.api == "anthropic" and name in prices
    ]


async def count_tokens(
    gateway: Gateway, key: str, body: dict[str, Any], headers: dict[str, str], request_id: str
) -> UpstreamAnswer:
    """The provider's count (or its refusal) for an authenticated caller; raises a LedgerError."""
    await gateway.owner(key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model", code="missing_model")
    snapshot = await gateway.catalog.get(gateway.pool)
    routes = _routes(gateway, snapshot.prices.get(model, {}))
    if not routes:
        raise ModelNotFound(f"The model '{model}' does not exist or no configured provider serves it.")

    def request_for(route: Route) -> tuple[str, bytes]:
        return COUNT_TOKENS_PATH, json.dumps({**body, "model": route.price.model}).encode()

    try:
        _route, response = await open_first(
            gateway.session,
            routes,
            request_for,
            stream=False,
            max_body=gateway.settings.max_upstream_body_bytes,
            headers=headers,
            free_to_repeat=True,
        )
    except (AllProvidersFailed, UpstreamBodyTooLarge) as exc:
        raise UpstreamFailed(f"No provider could count the tokens ({exc}).") from None
    return UpstreamAnswer(
        response.status_code,
        response.content,
        response.headers.get("content-type", "application/json"),
        {"x-request-id": request_id, "x-credits-charged": "0"},
    )

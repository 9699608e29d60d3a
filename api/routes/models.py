"""GET /v1/models: the models some configured provider serves."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.jsonresponse import LedgerJSONResponse
from api.services import services


async def list_models(request: Request) -> Response:
    await gateway_owner(request)
    state = services(request)
    snapshot = await state.catalog.get(state.pool)
    data = []
    for model, by_provider in sorted(snapshot.prices.items()):
        served = sorted(p for p in by_provider if p in state.providers)
        if served:
            data.append({"id": model, "object": "model", "created": 0, "owned_by": served[0], "providers": served})
    return LedgerJSONResponse({"object": "list", "data": data})

"""POST /v1/responses: the OpenAI Responses adapter on the metered engine."""

from __future__ import annotations

from api.routes.metered import metered_endpoint
from ledger.gateway.adapters.responses import parse_responses_request

create_response = metered_endpoint(lambda body, request: parse_responses_request(body))

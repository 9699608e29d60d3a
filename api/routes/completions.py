"""POST /v1/completions: the OpenAI legacy completions adapter on the metered engine."""

from __future__ import annotations

from api.routes.metered import metered_endpoint
from ledger.gateway.adapters.completions import parse_completions_request

completions = metered_endpoint(lambda body, request: parse_completions_request(body))

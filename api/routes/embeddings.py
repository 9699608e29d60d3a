"""POST /v1/embeddings: the OpenAI embeddings adapter on the metered engine."""

from __future__ import annotations

from api.routes.metered import metered_endpoint
from ledger.gateway.adapters.embeddings import parse_embeddings_request

embeddings = metered_endpoint(lambda body, request: parse_embeddings_request(body))

"""POST /v1/chat/completions: the OpenAI chat-completions adapter on the metered engine."""

from __future__ import annotations

from api.routes.metered import metered_endpoint
from ledger.gateway.adapters.chat import parse_chat_request

chat_completions = metered_endpoint(lambda body, request: parse_chat_request(body))

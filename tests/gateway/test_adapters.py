"""What every adapter tells the engine about its API's usage."""

from __future__ import annotations

import pytest

from ledger.gateway.adapters.chat import parse_chat_request
from ledger.gateway.adapters.completions import parse_completions_request
from ledger.gateway.adapters.embeddings import parse_embeddings_request
from ledger.gateway.adapters.messages import parse_messages_request
from ledger.gateway.adapters.responses import parse_responses_request
from ledger.gateway.pricing import TOKEN_TYPES

HELLO = [{"role": "user", "content": "Hello"}]
CALLS = {
    "chat": lambda: parse_chat_request({"model": "m", "messages": HELLO}),
    "responses": lambda: parse_responses_request({"model": "m", "input": "Hello"}),
    "embeddings": lambda: parse_embeddings_request({"model": "m", "input": "Hello"}),
    "completions": lambda: parse_completions_request({"model": "m", "prompt": "Hello"}),
    "messages": lambda: parse_messages_request({"model": "m", "messages": HELLO, "max_tokens": 10}),
}


@pytest.mark.parametrize("endpoint", sorted(CALLS))
def test_the_hold_covers_every_token_type_the_apis_usage_can_report(endpoint):
    """The hold prices a token at the dearest of the adapter's token_types: the usage it reads must
    never name another type, or a dearer one could be charged above the hold."""
    call = CALLS[endpoint]()
    read = call.usage_fields({"any": 1})

    assert call.endpoint == endpoint
    assert {"input", "output"} <= call.token_types <= set(TOKEN_TYPES)
    assert set(read) <= call.token_types

"""Models whose every call costs a fee beside its tokens, which this gateway cannot charge.

OpenAI's search models (`gpt-4o-search-preview`, `gpt-4o-mini-search-preview`,
`gpt-5-search-api`) search the web on every call, at a fee per call (about $0.025 at OpenAI's
prices for the search-preview models) that genai-prices does not carry: served at their token
prices, the operator paid about 270 times what the user was charged. The deep-research models
search on every call too, and Perplexity's `sonar` models charge per request (genai-prices'
`requests_kcount`); OpenRouter's `:online` variants add its web plugin per call.

A fee per call or per search cannot be held before the request (how many searches a call makes
is the provider's choice) and is not reported in the usage the settle reads, so such a model is
not served: the price sync skips it with this reason, and the catalog never routes to it, even
if an operator priced it by hand (docs/model-limits-and-fees.md).
"""

from __future__ import annotations

import re

# provider prefixes (openai/...) and date suffixes (-2025-03-11) included
PER_CALL_FEE = re.compile(
    r"(?:search-preview|search-api|deep-research|(?:^|/)sonar(?:$|[-/])|:online$)",
    re.IGNORECASE,
)

# why, in the price sync's report and in the refusal of a request
REFUSAL = (
    "every call also costs a fee per call or per web search, which the gateway can neither hold"
    " before the request nor read from the usage"
)
REASON = f"{REFUSAL}: not served"


def per_call_fee(model: str) -> bool:
    """Whether every call of `model` costs a fee beside its tokens that this gateway cannot charge."""
    return PER_CALL_FEE.search(model) is not None

"""The OpenAI embeddings adapter: input tokens only, never streamed.

The answer's vectors (float arrays, or base64 strings of little-endian float32) are passed through
untouched and never walked here: only the usage is read and replaced by the one charged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

from ledger.errors import InvalidRequest
from ledger.gateway.adapters import inputs
from ledger.gateway.adapters.inputs import Input
from ledger.gateway.engine import StreamMeter
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route
from ledger.gateway.tokens import TokenBounds, UsageFields, detail
from ledger.gateway.upstream import finite

UPSTREAM_PATH = "/embeddings"
# Every field of OpenAI's embeddings API: none changes the price of an input token (`dimensions`
# shortens the vectors, not the input). Any other field is refused, as chat refuses what it cannot
# meter.
ALLOWED_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
ENCODINGS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    body: dict[str, Any]
    model: str
    inputs: list[Input]

    endpoint = "embeddings"
    token_types = frozenset({"input", "output"})
    provider_api = "openai"
    stream = False
    wants_usage = False

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def description(self) -> str:
        return f"{self.model} embeddings in flight"

    @property
    def prompts(self) -> int:
        """Each input is embedded on its own, within the context window on its own."""
        return len(self.inputs)

    def prompt_upper_bound(self) -> int:
        return sum(inputs.upper_bound(item) for item in self.inputs)

    def most_completion_tokens(self, route: Route) -> int:
        return 0

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        window = route.price.context_window
        return TokenBounds(
            prompt_floor=sum(inputs.floor(item) for item in self.inputs),
            prompt_ceiling=sum(min(inputs.upper_bound(item), window) for item in self.inputs),
            completion_floor=0,
            completion_ceiling=0,
            prompt_estimate=sum(inputs.estimate(item) for item in self.inputs),
            completion_estimate=0,
        )

    def upstream_request(self, route: Route) -> tuple[str, bytes]:
        body = {**self.body, "model": route.price.model}
        return UPSTREAM_PATH, json.dumps(body, separators=(",", ":")).encode()

    def usage_fields(self, reported: Any) -> UsageFields:
        """prompt_tokens and total_tokens are all an embeddings usage has: no completion_tokens is
        0 output tokens (a count other than 0 is above the request's bound, an anomaly)."""
        output = detail(reported, "completion_tokens")
        return {
            "input": ("prompt_tokens", detail(reported, "prompt_tokens")),
            "output": ("completion_tokens", 0 if output is None else output),
        }

    def read_answer(self, payload: dict[str, Any]) -> list[str]:
        return []  # no text is generated; the vectors are not read

    def charged_answer(self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
        usage: dict[str, Any] = finite(reported) if isinstance(reported, dict) else {}
        usage.update(prompt_tokens=counts.input, total_tokens=counts.input + counts.output, cost=cost)
        if "completion_tokens" in usage:
            usage["completion_tokens"] = counts.output
        payload["usage"] = usage
        return payload

    def stream_meter(self) -> StreamMeter:
        never_streamed()

    @staticmethod
    def stream_error(message: str, code: str) -> bytes:
        never_streamed()


def never_streamed() -> NoReturn:
    raise NotImplementedError("embeddings are never streamed: `stream` is not a field of the API")


def _check_fields(body: dict[str, Any]) -> None:
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise InvalidRequest(
                f"Unsupported parameter: '{key}' is not a field of the embeddings API this gateway meters.",
                param=key[:200],
                code="unsupported_parameter",
            )


def parse_embeddings_request(body: dict[str, Any]) -> EmbeddingsRequest:
    """The request, checked (InvalidRequest for what OpenAI's API refuses or cannot be metered)."""
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model", code="missing_model")
    if "input" not in body:
        raise InvalidRequest("'input' is required.", param="input", code="invalid_input")
    items = inputs.read_inputs(body["input"], "input", empty_text=False)
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        raise InvalidRequest("'dimensions' must be a positive integer.", param="dimensions", code="invalid_dimensions")
    if body.get("encoding_format") not in (None, *ENCODINGS):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format", code="invalid_encoding_format"
        )
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise InvalidRequest("'user' must be a string.", param="user", code="invalid_user")
    return EmbeddingsRequest(body, model, items)

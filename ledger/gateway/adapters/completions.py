"""The OpenAI legacy completions adapter (`POST /v1/completions`).

Each prompt is completed on its own, `best_of` times (the upstream bills every candidate, returns
`n`): the completion bound is prompts x max(n, best_of) x the max_tokens sent, and max_tokens is
OpenAI's default 16 when the client sends none (sent upstream, so the hold and the upstream agree).
The usage and the stream are chat's (ledger.gateway.adapters.chat), with `text` choices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ledger.errors import InvalidRequest
from ledger.gateway.adapters import inputs
from ledger.gateway.adapters.chat import (
    OPENAI_USAGE_PATHS,
    ChoicesStreamMeter,
    openai_usage,
    openai_usage_fields,
    sse_event,
)
from ledger.gateway.adapters.inputs import Input
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route, reply_cap
from ledger.gateway.tokens import TokenBounds, UsageFields, completion_tokens_estimate, words

UPSTREAM_PATH = "/completions"
DEFAULT_MAX_TOKENS = 16  # OpenAI's, when max_tokens is absent or null
MAX_N = 128
MAX_BEST_OF = 20
MAX_LOGPROBS = 5
# Every field of OpenAI's legacy completions API: each one's cost is bounded (best_of's candidates
# are in the completion bound). Any other field is refused, as chat refuses what it cannot meter.
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "max_tokens",
        "n",
        "best_of",
        "echo",
        "logprobs",
        "stop",
        "suffix",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "seed",
        "user",
        "stream",
        "stream_options",
    }
)


def _invalid(message: str, param: str, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


@dataclass(frozen=True, slots=True)
class CompletionsRequest:
    body: dict[str, Any]
    model: str
    inputs: list[Input]
    suffix: str
    stream: bool
    max_tokens: int
    wants_usage: bool
    candidates: int  # max(n, best_of): the completions generated, and billed, per prompt
    echo: bool

    endpoint = "completions"
    token_types = frozenset(OPENAI_USAGE_PATHS)
    provider_api = "openai"

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def description(self) -> str:
        return f"{self.model} completion in flight"

    @property
    def prompts(self) -> int:
        """Each prompt is completed on its own, within the context window on its own."""
        return len(self.inputs)

    def _bound(self, item: Input) -> int:
        return inputs.upper_bound(item) + len(self.suffix.encode(errors="surrogatepass"))

    def prompt_upper_bound(self) -> int:
        return sum(self._bound(item) for item in self.inputs)

    def most_completion_tokens(self, route: Route) -> int:
        return len(self.inputs) * self.candidates * reply_cap(route, self.max_tokens)

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        window = route.price.context_window
        suffix_words = words(self.suffix)
        return TokenBounds(
            prompt_floor=sum(inputs.floor(item) + suffix_words for item in self.inputs),
            prompt_ceiling=sum(min(self._bound(item), window) for item in self.inputs),
            completion_floor=completion_floor,
            completion_ceiling=self.most_completion_tokens(route),
            prompt_estimate=sum(inputs.estimate(item) + suffix_words for item in self.inputs),
            completion_estimate=completion_tokens_estimate(reply_text),
        )

    def upstream_request(self, route: Route) -> tuple[str, bytes]:
        body = {**self.body, "model": route.price.model, "max_tokens": reply_cap(route, self.max_tokens)}
        if self.stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return UPSTREAM_PATH, json.dumps(body, separators=(",", ":")).encode()

    def usage_fields(self, reported: Any) -> UsageFields:
        return openai_usage_fields(reported)

    def generated(self, text: str) -> str:
        """The part of a choice's text the model generated: with `echo`, the prompt it starts with
        is not (none when the prompt is not known as text: token ids)."""
        if not self.echo:
            return text
        for prompt in sorted((item for item in self.inputs if isinstance(item, str)), key=len, reverse=True):
            if text.startswith(prompt):
                return text[len(prompt) :]
        return ""

    def read_answer(self, payload: dict[str, Any]) -> list[str]:
        choices = payload.get("choices")
        return [
            self.generated(choice["text"])
            for choice in (choices if isinstance(choices, list) else [])
            if isinstance(choice, dict) and isinstance(choice.get("text"), str)
        ]

    def charged_answer(self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
        payload["usage"] = openai_usage(reported, counts, cost)
        return payload

    def stream_meter(self) -> CompletionsStreamMeter:
        return CompletionsStreamMeter(client_wants_usage=self.wants_usage, request=self)

    @staticmethod
    def stream_error(message: str, code: str) -> bytes:
        """An error told to a client whose stream already started (OpenAI's in-stream error)."""
        return sse_event({"error": {"message": message, "type": "upstream_error", "code": code}})


@dataclass
class CompletionsStreamMeter(ChoicesStreamMeter):
    """A legacy completions stream: each chunk's choices carry `text` (the echoed prompt is not
    counted as generated)."""

    request: CompletionsRequest = field(kw_only=True)

    chunk_object: ClassVar[str] = "text_completion"

    @staticmethod
    def choice_ok(choice: dict[str, Any]) -> bool:
        return choice.get("text") is None or isinstance(choice["text"], str)

    @staticmethod
    def choice_text(choice: dict[str, Any]) -> list[str]:
        text = choice.get("text")
        return [text] if isinstance(text, str) else []

    def _generated(self) -> list[str]:
        return [self.request.generated("".join(pieces)) for pieces in self.text.values()]

    @property
    def generated_text(self) -> str:
        return "\n".join(self._generated())

    @property
    def words(self) -> int:
        return sum(words(text) for text in self._generated())


def _whole(body: dict[str, Any], key: str, low: int, high: int | None, default: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if type(value) is not int or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise _invalid(f"'{key}' must be a whole number {span}.", key, f"invalid_{key}")
    return value


def _check_fields(body: dict[str, Any]) -> None:
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise _invalid(
                f"Unsupported parameter: '{key}' is not a field of the completions API this gateway meters.",
                key[:200],
                "unsupported_parameter",
            )
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object.", "stream_options", "invalid_stream_options")
    for key, value in (options or {}).items():
        if key != "include_usage" or (value is not None and not isinstance(value, bool)):
            raise _invalid(
                "'stream_options' may only have 'include_usage', a boolean.",
                f"stream_options.{key}"[:200],
                "invalid_stream_options",
            )


def parse_completions_request(body: dict[str, Any]) -> CompletionsRequest:
    """The request, checked (InvalidRequest for what OpenAI's API refuses or cannot be metered)."""
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' is required and must be a string.", "model", "missing_model")
    if "prompt" not in body:
        raise _invalid("'prompt' is required.", "prompt", "invalid_prompt")
    items = inputs.read_inputs(body["prompt"], "prompt", empty_text=True)
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _invalid("'suffix' must be a string.", "suffix", "invalid_suffix")
    for key in ("stream", "echo"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise _invalid(f"'{key}' must be a boolean.", key, f"invalid_{key}")
    stream = body.get("stream") is True
    max_tokens = _whole(body, "max_tokens", 0, None, DEFAULT_MAX_TOKENS)
    n = _whole(body, "n", 1, MAX_N, 1)
    best_of = _whole(body, "best_of", 1, MAX_BEST_OF, n)  # absent: the n completions asked for
    if best_of < n:
        raise _invalid("'best_of' must be at least 'n'.", "best_of", "invalid_best_of")
    if stream and body.get("best_of") is not None and best_of > 1:
        raise _invalid("'best_of' cannot be used with 'stream'.", "best_of", "invalid_best_of")
    _whole(body, "logprobs", 0, MAX_LOGPROBS, 0)
    include_usage = (body.get("stream_options") or {}).get("include_usage") is True
    return CompletionsRequest(
        body,
        model,
        items,
        suffix or "",
        stream,
        max_tokens,
        stream and include_usage,
        best_of,
        body.get("echo") is True,
    )

"""The OpenAI chat-completions adapter: what the metered engine needs to know about one request
shape (parse and check the body, bound its cost, build each upstream's body, read the usage from
an answer or a stream, and give the client the usage actually charged)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ledger.errors import InvalidRequest, RequestTooComplex
from ledger.gateway.model_limits import takes_max_completion_tokens
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route, reply_cap
from ledger.gateway.tokens import (
    TextByIndex,
    TokenBounds,
    UnboundedPart,
    UsageFields,
    check_parts,
    completion_tokens_estimate,
    fields_at,
    prompt_tokens_estimate,
    prompt_tokens_floor,
    prompt_tokens_upper_bound,
    upstream_json,
)
from ledger.gateway.upstream import finite

UPSTREAM_PATH = "/chat/completions"
DONE = b"data: [DONE]\n\n"

# The OpenAI chat-completions fields the service can bound (what they cost is within the hold and
# the settle's bounds). Any other field is refused: passed through, it could buy an unpriced model
# (OpenRouter's `models`, `route`), paid tools (`plugins`, `web_search_options`), a dearer tier
# (`service_tier: priority`), audio output, or unbilled tokens (`prediction`, `best_of`).
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "reasoning_effort",
        "metadata",
        "store",
        "prompt_cache_key",
        "safety_identifier",
        "verbosity",
        "service_tier",
        "modalities",
    }
)
# Fields allowed only with these values (None: the field sent as null).
ALLOWED_VALUES: dict[str, list[Any]] = {
    "service_tier": [None, "auto", "default"],
    "modalities": [None, ["text"]],
}
STREAM_OPTIONS = frozenset({"include_usage", "include_obfuscation"})


# Where OpenAI's usage object (chat completions, completions) reports each token type: prompt_tokens
# includes the cached and audio ones, completion_tokens the reasoning and audio ones.
OPENAI_USAGE_PATHS = {
    "input": ("prompt_tokens",),
    "output": ("completion_tokens",),
    "cache_read": ("prompt_tokens_details", "cached_tokens"),
    "cache_write": ("prompt_tokens_details", "cache_write_tokens"),  # OpenRouter's, as genai-prices reads it
    "input_audio": ("prompt_tokens_details", "audio_tokens"),
    "reasoning": ("completion_tokens_details", "reasoning_tokens"),
    "output_audio": ("completion_tokens_details", "audio_tokens"),
}


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"Unsupported parameter: '{param}' {why}.", param=param, code="unsupported_parameter")


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest(f"'{key}' must be a positive integer.", param=key, code="invalid_max_tokens")
    return value


def _check_fields(body: dict[str, Any]) -> None:
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise _unsupported(key, "is not supported by this gateway: its cost could not be metered")
    for key, allowed in ALLOWED_VALUES.items():
        if key in body and body[key] not in allowed:
            shown = ", ".join(json.dumps(value) for value in allowed if value is not None)
            raise _unsupported(key, f"may only be {shown} here")
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        # a provider's built-in tools (web search, code interpreter) are billed per call: only the
        # caller's own functions, which cost their tokens
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            raise _unsupported(
                f"tools[{index}].type", "must be 'function' or 'custom' (built-in tools cannot be metered)"
            )
    options = body.get("stream_options")
    if isinstance(options, dict):
        for key in options:
            if key not in STREAM_OPTIONS:
                raise _unsupported(f"stream_options.{key}"[:200], "is not supported by this gateway")


def sse_event(payload: Any) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    messages: list[Any]
    stream: bool
    max_tokens: int | None
    wants_usage: bool
    replies: int  # `n`: how many choices the upstream generates
    # prompt material beside the messages (tool and function definitions, a response schema)
    extra_prompt: dict[str, Any]

    endpoint = "chat"
    prompts = 1
    token_types = frozenset(OPENAI_USAGE_PATHS)
    provider_api = "openai"

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def description(self) -> str:
        return f"{self.model} request in flight"

    def prompt_upper_bound(self) -> int:
        return prompt_tokens_upper_bound(self.messages, self.extra_prompt)

    def most_completion_tokens(self, route: Route) -> int:
        return self.replies * reply_cap(route, self.max_tokens)

    def usage_fields(self, reported: Any) -> UsageFields:
        return openai_usage_fields(reported)

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        return TokenBounds(
            prompt_floor=prompt_tokens_floor(self.messages),
            prompt_ceiling=prompt_tokens_upper_bound(self.messages, self.extra_prompt, route.price.context_window),
            completion_floor=completion_floor,
            completion_ceiling=self.most_completion_tokens(route),
            prompt_estimate=prompt_tokens_estimate(self.messages, self.extra_prompt),
            completion_estimate=completion_tokens_estimate(reply_text),
        )

    def upstream_request(self, route: Route) -> tuple[str, bytes]:
        """The path and body for one route: its max_tokens is the hold's, in the field(s) the client
        used (`max_tokens` when the client sent neither: the field every OpenAI-compatible server
        reads), for the route's own name of the model."""
        body = dict(self.body)
        cap = reply_cap(route, self.max_tokens)
        fields = [key for key in ("max_completion_tokens", "max_tokens") if body.get(key) is not None]
        at_openai = route.provider == "openai" or "openai.com" in route.config.base_url  # Azure's too
        if at_openai and takes_max_completion_tokens(route.price.model):
            # OpenAI's reasoning models (o-series, gpt-5) refuse max_tokens: the cap goes in the
            # field they take, whichever the client used
            body.pop("max_tokens", None)
            fields = ["max_completion_tokens"]
        for key in fields or ["max_tokens"]:
            body[key] = cap
        if self.stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        body["model"] = route.price.model
        return UPSTREAM_PATH, json.dumps(body, separators=(",", ":")).encode()

    def read_answer(self, payload: dict[str, Any]) -> list[str]:
        """The texts of the answer's choices (content, refusal, tool calls): the floor and the
        estimate of its completion tokens."""
        texts = []
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            parts = [message[key] for key in ("content", "refusal") if isinstance(message.get(key), str)]
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    parts.extend(str(function.get(key, "")) for key in ("name", "arguments"))
            texts.append(" ".join(parts))
        return texts

    def charged_answer(self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
        """The answer the client gets: its usage is what was charged, with the cost."""
        payload["usage"] = openai_usage(reported, counts, cost)
        return payload

    def stream_meter(self) -> ChatStreamMeter:
        return ChatStreamMeter(client_wants_usage=self.wants_usage)

    @staticmethod
    def stream_error(message: str, code: str) -> bytes:
        """An error told to a client whose stream already started (OpenAI's in-stream error)."""
        return sse_event({"error": {"message": message, "type": "upstream_error", "code": code}})


def object_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """parent[key] when it is an object, else an empty one."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def openai_usage_fields(reported: Any) -> UsageFields:
    return fields_at(reported, OPENAI_USAGE_PATHS)


def openai_usage(reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
    """An OpenAI usage object with the counts charged and the cost (the reported one's other
    fields kept)."""
    usage: dict[str, Any] = finite(reported) if isinstance(reported, dict) else {}
    prompt_details = object_at(usage, "prompt_tokens_details")
    completion_details = object_at(usage, "completion_tokens_details")
    if counts.cache_write or "cache_write_tokens" in prompt_details:  # OpenRouter's field, when it is used
        prompt_details = {**prompt_details, "cache_write_tokens": counts.cache_write}
    return {
        **usage,
        "prompt_tokens": counts.input,
        "completion_tokens": counts.output,
        "total_tokens": counts.input + counts.output,
        "prompt_tokens_details": {
            **prompt_details,
            "cached_tokens": counts.cache_read,
            "audio_tokens": counts.input_audio,
        },
        "completion_tokens_details": {
            **completion_details,
            "reasoning_tokens": counts.reasoning,
            "audio_tokens": counts.output_audio,
        },
        "cost": cost,
    }


def check_size(raw: bytes, most: int) -> None:
    """Refuses, before it is parsed, a body with more JSON values than any real prompt has: parsing
    16 million tiny values takes seconds of the event loop and gigabytes. Counting separators is
    done at C speed; a long text prompt has about one comma per 60 bytes."""
    separators = raw.count(b",") + raw.count(b":")
    if separators > most:
        raise RequestTooComplex(
            f"The request body has {separators} JSON separators (',' and ':'); at most {most} are accepted.",
        )


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    """The request, checked: a field whose cost cannot be bounded is refused (InvalidRequest)."""
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model", code="missing_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest(
            "'messages' must be a non-empty array of message objects.",
            param="messages",
            code="invalid_messages",
        )
    try:
        check_parts(messages)
    except UnboundedPart as exc:
        raise InvalidRequest(str(exc), param=exc.param, code="unsupported_content_part") from None
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream", code="invalid_stream")
    completion_cap = _positive_int(body, "max_completion_tokens")
    legacy_cap = _positive_int(body, "max_tokens")
    # both sent: the smaller binds (the upstream receives the smaller in both fields)
    caps = [cap for cap in (completion_cap, legacy_cap) if cap is not None]
    max_tokens = min(caps) if caps else None
    replies = body.get("n", 1)
    if replies is None:
        replies = 1
    if isinstance(replies, bool) or not isinstance(replies, int) or not 1 <= replies <= 128:
        raise InvalidRequest("'n' must be a whole number from 1 to 128.", param="n", code="invalid_n")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(
            "'stream_options' must be an object.", param="stream_options", code="invalid_stream_options"
        )
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise InvalidRequest(
            "'stream_options.include_usage' must be a boolean.",
            param="stream_options.include_usage",
            code="invalid_stream_options",
        )
    wants_usage = stream and include_usage is True
    extra = {key: body[key] for key in ("tools", "functions", "response_format") if body.get(key)}
    return ChatRequest(body, model, messages, stream, max_tokens, wants_usage, replies, extra)


@dataclass
class ChoicesStreamMeter(TextByIndex):
    """Follows an OpenAI SSE stream of chunks with `choices` (chat completions, legacy completions)
    event by event; an API's meter says what a well-formed choice is and what text it carries.

    It keeps the generated text per choice (to floor and estimate token counts) and the upstream's
    usage (any JSON, judged at the settle), and decides what the client gets now: every well-formed
    chunk without its usage. Malformed events are skipped, and the usage chunk and [DONE] are held
    back: the proxy settles first, then sends the usage with the cost actually charged.
    """

    client_wants_usage: bool
    text: dict[int, list[str]] = field(default_factory=dict)
    usage: Any = None
    base: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0
    skipped: int = 0
    done: bool = False
    # the provider's own error in the stream: a chunk with an `error` object (OpenAI), or a choice
    # finished with finish_reason "error" (OpenRouter)
    provider_error: str | None = None

    chunk_object: ClassVar[str]  # the `object` of the closing usage chunk

    @staticmethod
    def choice_ok(choice: dict[str, Any]) -> bool:
        """Whether the client's SDK can read this choice of a chunk."""
        raise NotImplementedError

    @staticmethod
    def choice_text(choice: dict[str, Any]) -> list[str]:
        """The generated text one well-formed choice of a chunk carries."""
        raise NotImplementedError

    def _well_formed(self, chunk: Any) -> bool:
        """An object whose choices (if any) are a list of objects the SDK can read."""
        if not isinstance(chunk, dict):
            return False
        choices = chunk.get("choices")
        if choices is None:
            return True
        return isinstance(choices, list) and all(isinstance(c, dict) and self.choice_ok(c) for c in choices)

    def event(self, lines: list[str]) -> bytes | None:
        """One SSE event (its lines, without the blank line): the bytes to forward, or None."""
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return None
        if data == "[DONE]":
            self.done = True
            return None
        try:
            raw = upstream_json(data)
            chunk = finite(raw)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to walk
            raw = chunk = None
        if not self._well_formed(chunk):
            self.skipped += 1
            return None
        self._observe(chunk)
        self._note_error(chunk)
        had_usage = "usage" in chunk
        chunk.pop("usage", None)
        if raw.get("usage") is not None:
            self.usage = raw["usage"]  # as reported (NaN included): judged at the settle
            if not chunk.get("choices"):
                return None  # the usage-only chunk: sent after the settle, with the charged cost
        if had_usage and self.client_wants_usage:
            chunk["usage"] = None
        try:
            return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()
        except (ValueError, RecursionError):
            self.skipped += 1
            return None

    def _observe(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        for key in ("id", "object", "created", "model", "system_fingerprint"):
            if key in chunk and key not in self.base:
                self.base[key] = chunk[key]
        for choice in chunk.get("choices") or []:
            index = choice.get("index") if isinstance(choice.get("index"), int) else 0
            self.text.setdefault(index, []).extend(self.choice_text(choice))

    def _note_error(self, chunk: dict[str, Any]) -> None:
        error = chunk.get("error")
        finished_in_error = any(choice.get("finish_reason") == "error" for choice in chunk.get("choices") or [])
        if isinstance(error, dict) or finished_in_error:
            message = error.get("message") if isinstance(error, dict) else None
            self.provider_error = str(message)[:300] if message is not None else "finish_reason: error"

    def unfinished(self) -> str | None:
        # a chat stream may end without [DONE] (the usage is what matters), not with an error
        return (
            None if self.provider_error is None else f"the provider's stream reported an error: {self.provider_error}"
        )

    def closing_events(self, counts: TokenCounts, cost: str, wants_usage: bool) -> bytes:
        """The usage chunk (when the client asked for it), with what was charged, then [DONE]."""
        if not wants_usage:
            return DONE
        chunk = {
            "object": self.chunk_object,
            **self.base,
            "choices": [],
            "usage": openai_usage(None, counts, cost),
        }
        return f"data: {json.dumps(finite(chunk), separators=(',', ':'))}\n\n".encode() + DONE


@dataclass
class ChatStreamMeter(ChoicesStreamMeter):
    """A chat-completions stream: each choice's `delta` (content, refusal, tool calls)."""

    chunk_object: ClassVar[str] = "chat.completion.chunk"

    @staticmethod
    def choice_ok(choice: dict[str, Any]) -> bool:
        return isinstance(choice.get("delta") or {}, dict)

    @staticmethod
    def choice_text(choice: dict[str, Any]) -> list[str]:
        pieces = []
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            pieces.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            pieces.append(delta["refusal"])
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                pieces.append(" " + function["name"] + " ")
            if isinstance(arguments, str):
                pieces.append(arguments)
        return pieces

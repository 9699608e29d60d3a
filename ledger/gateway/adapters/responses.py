"""The OpenAI Responses API adapter (`POST /v1/responses`, `client.responses.create`, the Agents
SDK): parse and check the body, bound its cost, build each upstream's body, read the usage from an
answer or from the stream's terminal event, and give the client the usage actually charged.

Stored context (`previous_response_id`, `conversation`, `item_reference` items, and a `reasoning`
item sent by its id without its `encrypted_content`: the documented pattern with `store: true`,
where the provider brings back the stored reasoning) is added by the provider where the gateway
cannot see it: such a prompt is bounded by the model's context window only, which the hold and
the settle's bounds already cap every prompt at.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.chat import object_at
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route, reply_cap
from ledger.gateway.tokens import (
    IMAGE_HIGH_ESTIMATE,
    IMAGE_HIGH_TOKENS,
    IMAGE_LOW_ESTIMATE,
    IMAGE_LOW_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TOOLS_OVERHEAD,
    TextByIndex,
    TokenBounds,
    UsageFields,
    completion_tokens_estimate,
    fields_at,
    upstream_json,
    words,
)
from ledger.gateway.upstream import finite

UPSTREAM_PATH = "/responses"

# The Responses fields the service can bound. Any other is refused: `background` (an asynchronous
# response is generated after this request ends: nothing could meter it), `prompt` (a stored prompt
# template brings unseen tools, built-in ones included, and model settings), `prompt_cache_retention`
# and anything new whose cost is not known.
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "top_logprobs",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "metadata",
        "store",
        "user",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
        "truncation",
        "include",
        "previous_response_id",
        "conversation",
        "max_tool_calls",
        "background",
    }
)
# Fields allowed only with these values (None: the field sent as null).
ALLOWED_VALUES: dict[str, list[Any]] = {
    "service_tier": [None, "auto", "default"],  # flex and priority are priced differently
    "background": [None, False],
    "truncation": [None, "auto", "disabled"],
}
# `include` values that only return what the response already has, at no extra cost; the others
# name results of built-in tools, which are refused.
INCLUDABLE = frozenset({"reasoning.encrypted_content", "message.output_text.logprobs", "message.input_image.image_url"})
STREAM_OPTIONS = frozenset({"include_obfuscation"})
OWN_TOOLS = ("function", "custom")  # a provider's built-in tools are billed per call
TOOL_CHOICES = ("none", "auto", "required")

# The input items whose tokens are their text: messages, the caller's own tool calls and their
# outputs, reasoning passed back. Built-in tools' items (computer screenshots, shell output, ...)
# are refused with the tools themselves; `item_reference` is stored context.
INPUT_ITEMS = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "item_reference",
    }
)
TEXT_PARTS = frozenset({"input_text", "output_text", "refusal", "summary_text", "reasoning_text"})
IMAGE_DETAILS: dict[str | None, int] = {
    "low": IMAGE_LOW_TOKENS,
    "high": IMAGE_HIGH_TOKENS,
    "auto": IMAGE_HIGH_TOKENS,
    None: IMAGE_HIGH_TOKENS,
}
IMAGE_ESTIMATES: dict[str | None, int] = {
    "low": IMAGE_LOW_ESTIMATE,
    "high": IMAGE_HIGH_ESTIMATE,
    "auto": IMAGE_HIGH_ESTIMATE,
    None: IMAGE_HIGH_ESTIMATE,
}
# what a stream's text is made of, by event type
TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)
# the events that end a response and carry its usage: held back until the settle
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
# a prompt with stored context: only the model's context window bounds it
UNSEEN_CONTEXT = sys.maxsize


def _named(value: Any, names: Collection[str | None]) -> bool:
    """Whether a JSON value is one of `names` (a list or an object is none, and unhashable)."""
    return isinstance(value, str) and value in names


def _invalid(message: str, param: str, code: str) -> InvalidRequest:
    return InvalidRequest(message, param=param[:200], code=code)


def _unsupported(param: str, why: str) -> InvalidRequest:
    return _invalid(f"Unsupported parameter: '{param[:200]}' {why}.", param, "unsupported_parameter")


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _invalid("'tools' must be an array.", "tools", "invalid_tools")
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or tool.get("type") not in OWN_TOOLS:
            raise _unsupported(
                f"tools[{index}].type",
                "must be 'function' or 'custom': built-in tools (web search, file search, code interpreter,"
                " image generation, computer use, MCP, ...) are billed per call and cannot be metered",
            )
    choice = body.get("tool_choice")
    if choice is None or choice in TOOL_CHOICES:
        return
    if not isinstance(choice, dict):
        raise _invalid("'tool_choice' must be 'none', 'auto', 'required' or an object.", "tool_choice", "invalid_tools")
    kind = choice.get("type")
    named = choice.get("tools") if kind == "allowed_tools" else [choice]
    if kind not in (*OWN_TOOLS, "allowed_tools") or not isinstance(named, list):
        raise _unsupported("tool_choice.type", "may only choose a 'function' or 'custom' tool here")
    for index, tool in enumerate(named):
        if not isinstance(tool, dict) or tool.get("type") not in OWN_TOOLS:
            raise _unsupported(f"tool_choice.tools[{index}].type", "may only allow 'function' or 'custom' tools")


def _check_fields(body: dict[str, Any]) -> None:
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise _unsupported(key, "is not supported by this gateway: its cost could not be metered")
    for key, allowed in ALLOWED_VALUES.items():
        if key in body and body[key] not in allowed:
            shown = ", ".join(json.dumps(value) for value in allowed if value is not None)
            raise _unsupported(key, f"may only be {shown} here")
    _check_tools(body)
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise _invalid("'include' must be an array of strings.", "include", "invalid_include")
    for index, value in enumerate(include or []):
        if not _named(value, INCLUDABLE):
            raise _unsupported(f"include[{index}]", f"may only be one of {', '.join(sorted(INCLUDABLE))} here")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object.", "stream_options", "invalid_stream_options")
    for key in options or {}:
        if key not in STREAM_OPTIONS:
            raise _unsupported(f"stream_options.{key}", "is not supported by this gateway")
    for key in ("instructions", "previous_response_id"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _invalid(f"'{key}' must be a string.", key, f"invalid_{key}")
    for key in ("text", "reasoning"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise _invalid(f"'{key}' must be an object.", key, f"invalid_{key}")
    conversation = body.get("conversation")
    if conversation is not None and not isinstance(conversation, (str, dict)):
        raise _invalid("'conversation' must be a string or an object.", "conversation", "invalid_conversation")


# Where the Responses API reports each token type: input_tokens includes the cached ones,
# output_tokens the reasoning ones.
RESPONSES_USAGE_PATHS = {
    "input": ("input_tokens",),
    "output": ("output_tokens",),
    "cache_read": ("input_tokens_details", "cached_tokens"),
    "cache_write": ("input_tokens_details", "cache_write_tokens"),
    "reasoning": ("output_tokens_details", "reasoning_tokens"),
}


@dataclass
class _Prompt:
    """What the gateway sees of a prompt: its JSON bytes, the bound of its images, its words."""

    size: int = 0
    images: int = 0  # the images' bound (the hold's)
    image_estimate: int = 0  # what they most likely cost (a request whose usage never came)
    words: int = 0
    text_bytes: int = 0
    stored: bool = False  # it references context only the provider has

    def text(self, value: Any) -> None:
        if isinstance(value, str):
            self.words += words(value)
            self.text_bytes += len(value.encode())


def _parts(prompt: _Prompt, parts: Any, where: str) -> list[Any]:
    """The content parts without their images (bounded apart); a part that cannot be bounded
    (a file: PDFs are billed as text plus an image per page) is refused."""
    if isinstance(parts, str):
        prompt.text(parts)
        return [parts]
    if not isinstance(parts, list):
        raise _invalid(f"'{where}' must be a string or an array of content parts.", where, "invalid_input")
    kept: list[Any] = []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(part, dict) and _named(kind, TEXT_PARTS):
            prompt.text(part.get("text", part.get("refusal")))
            kept.append(part)
        elif isinstance(part, dict) and kind == "input_image":
            image_detail = part.get("detail")
            if image_detail is not None and not _named(image_detail, IMAGE_DETAILS):
                raise _invalid(
                    f"{where}[{index}]: image detail must be 'low', 'high' or 'auto'.",
                    f"{where}[{index}].detail",
                    "unsupported_content_part",
                )
            prompt.images += IMAGE_DETAILS[image_detail]
            prompt.image_estimate += IMAGE_ESTIMATES[image_detail]
        else:
            raise _invalid(
                f"{where}[{index}]: content parts of type {json.dumps(kind)[:40]} cannot be metered before the"
                " provider reads them (files and unknown types are refused); send input_text or input_image.",
                f"{where}[{index}]",
                "unsupported_content_part",
            )
    return kept


def stands_for_stored_reasoning(item: dict[str, Any]) -> bool:
    """A reasoning item that does not carry its reasoning: with `store: true` an agent passes back
    only its `id` (and maybe its summary), and the provider adds the stored reasoning tokens to the
    prompt (5,200 input tokens reported for a request whose own bytes bound 1,421). Only an item
    with its `encrypted_content` carries what the provider will read."""
    content = item.get("encrypted_content")
    return not (isinstance(content, str) and content)


def _read_input(value: Any, prompt: _Prompt) -> list[Any]:
    """The input items as counted (images taken out), checked item by item."""
    if isinstance(value, str):
        prompt.text(value)
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise _invalid("'input' must be a string or an array of input items.", "input", "invalid_input")
    items: list[Any] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"'{where}' must be an object.", where, "invalid_input")
        kind = item.get("type", "message" if "role" in item else None)
        if not _named(kind, INPUT_ITEMS):
            raise _invalid(
                f"{where}: input items of type {json.dumps(kind)[:40]} cannot be metered here (the items of"
                " built-in tools are refused with the tools).",
                f"{where}.type",
                "unsupported_input_item",
            )
        if kind == "item_reference" or (kind == "reasoning" and stands_for_stored_reasoning(item)):
            prompt.stored = True
        counted = dict(item)
        if kind == "message":
            counted["content"] = _parts(prompt, item.get("content"), f"{where}.content")
            prompt.words += 1  # the role is at least a token
        elif kind in ("function_call_output", "custom_tool_call_output"):
            counted["output"] = _parts(prompt, item.get("output"), f"{where}.output")
        items.append(counted)
    return items


@dataclass
class ResponsesRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    max_output_tokens: int | None
    items: list[Any]  # the input items as counted: images out (bounded in `prompt.images`)
    prompt: _Prompt
    # prompt material beside the input (instructions, tool definitions, the output's schema)
    extra_prompt: dict[str, Any]
    meter: ResponsesStreamMeter | None = None

    endpoint = "responses"
    prompts = 1
    token_types = frozenset(RESPONSES_USAGE_PATHS)
    provider_api = "openai"

    @property
    def wants_usage(self) -> bool:
        return self.stream  # the Responses API always ends its stream with the usage

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def description(self) -> str:
        return f"{self.model} response in flight"

    def _own_tokens_bound(self) -> int:
        """One token per UTF-8 byte of the JSON the gateway sees, plus the images' bounds."""
        total = REPLY_PRIMING + self.prompt.images
        if self.extra_prompt:
            total += len(json.dumps(self.extra_prompt, ensure_ascii=False).encode())
            if set(self.extra_prompt) - {"instructions"}:
                total += TOOLS_OVERHEAD
        for item in self.items:
            total += len(json.dumps(item, ensure_ascii=False).encode()) + MESSAGE_OVERHEAD
        return total

    def prompt_upper_bound(self) -> int:
        return UNSEEN_CONTEXT if self.prompt.stored else self._own_tokens_bound()

    def most_completion_tokens(self, route: Route) -> int:
        return reply_cap(route, self.max_output_tokens)  # reasoning tokens are within it

    def usage_fields(self, reported: Any) -> UsageFields:
        return responses_usage_fields(reported)

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        window = route.price.context_window
        extra = len(json.dumps(self.extra_prompt).encode()) if self.extra_prompt else 0
        return TokenBounds(
            prompt_floor=self.prompt.words + words(str(self.extra_prompt.get("instructions", ""))),
            prompt_ceiling=min(self.prompt_upper_bound(), window),
            completion_floor=completion_floor,
            completion_ceiling=self.most_completion_tokens(route),
            prompt_estimate=math.ceil((self.prompt.text_bytes + extra) / 4)
            + MESSAGE_OVERHEAD * len(self.items)
            + REPLY_PRIMING
            + self.prompt.image_estimate,  # not the images' bound: that is the hold's
            completion_estimate=completion_tokens_estimate(reply_text),
        )

    def upstream_request(self, route: Route) -> tuple[str, bytes]:
        """The path and body for one route: its max_output_tokens is the hold's (the model's limit
        when the client sent none), for the route's own name of the model."""
        body = {**self.body, "max_output_tokens": reply_cap(route, self.max_output_tokens), "model": route.price.model}
        return UPSTREAM_PATH, json.dumps(body, separators=(",", ":")).encode()

    def read_answer(self, payload: dict[str, Any]) -> list[str]:
        """The texts of the output items: the floor and the estimate of the completion's tokens."""
        output = payload.get("output")
        return [output_item_text(item) for item in (output if isinstance(output, list) else [])]

    def charged_answer(self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
        payload["usage"] = responses_usage(reported, counts, cost)
        return payload

    def stream_meter(self) -> ResponsesStreamMeter:
        self.meter = ResponsesStreamMeter()
        return self.meter

    def stream_error(self, message: str, code: str) -> bytes:
        """An error told to a client whose stream already started: the Responses API's `error` event."""
        sequence = self.meter.next_sequence() if self.meter is not None else 0
        error = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": sequence}
        return sse_event("error", error)


def output_item_text(item: Any) -> str:
    """The generated text of one output item: a message's text and refusals, a tool call's name
    and arguments, a reasoning item's summary and text."""
    if not isinstance(item, dict):
        return ""
    pieces = [item.get(key) for key in ("name", "arguments", "input")]
    for key in ("content", "summary"):
        parts = item.get(key)
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                pieces.extend(part.get(name) for name in ("text", "refusal"))
    return " ".join(piece for piece in pieces if isinstance(piece, str))


def responses_usage_fields(reported: Any) -> UsageFields:
    return fields_at(reported, RESPONSES_USAGE_PATHS)


def responses_usage(reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
    """A Responses usage object with the counts charged and the cost (the reported one's other
    fields kept)."""
    usage: dict[str, Any] = finite(reported) if isinstance(reported, dict) else {}
    input_details = object_at(usage, "input_tokens_details")
    output_details = object_at(usage, "output_tokens_details")
    return {
        **usage,
        "input_tokens": counts.input,
        "input_tokens_details": {
            **input_details,
            "cached_tokens": counts.cache_read,
            "cache_write_tokens": counts.cache_write,
        },
        "output_tokens": counts.output,
        "output_tokens_details": {**output_details, "reasoning_tokens": counts.reasoning},
        "total_tokens": counts.input + counts.output,
        "cost": cost,
    }


def sse_event(name: str, payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _invalid(f"'{key}' must be a positive integer.", key, "invalid_max_tokens")
    return value


def parse_responses_request(body: dict[str, Any]) -> ResponsesRequest:
    """The request, checked: a field whose cost cannot be bounded is refused (InvalidRequest)."""
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' is required and must be a string.", "model", "missing_model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean.", "stream", "invalid_stream")
    max_output_tokens = _positive_int(body, "max_output_tokens")
    prompt = _Prompt(stored=body.get("previous_response_id") is not None or body.get("conversation") is not None)
    if "input" not in body and not prompt.stored:
        raise _invalid("'input' is required: a string or an array of input items.", "input", "invalid_input")
    items = _read_input(body["input"], prompt) if "input" in body else []
    extra = {key: body[key] for key in ("instructions", "tools", "text") if body.get(key)}
    text_format = body.get("text", {}).get("format") if isinstance(body.get("text"), dict) else None
    if not text_format or text_format == {"type": "text"}:
        extra.pop("text", None)  # plain text output adds no prompt of its own
    return ResponsesRequest(body, model, stream, max_output_tokens, items, prompt, extra)


@dataclass
class ResponsesStreamMeter(TextByIndex):
    """Follows a Responses SSE stream event by event.

    Every well-formed event (a JSON object with a `type`) is forwarded as it comes, except the
    terminal one (response.completed, .incomplete or .failed), which carries the usage: it is held
    back until the settle, then sent with the usage charged and its cost. Its generated text is
    kept by output item (to floor and estimate the completion's tokens). Malformed events, and any
    event after the terminal one, are skipped.
    """

    text: dict[int, list[str]] = field(default_factory=dict)
    usage: Any = None
    terminal: dict[str, Any] | None = None
    terminal_name: str = ""
    last_sequence: int = -1
    chunks: int = 0
    skipped: int = 0
    provider_error: str | None = None  # an `error` event, or response.failed's error

    def next_sequence(self) -> int:
        self.last_sequence += 1
        return self.last_sequence

    def event(self, lines: list[str]) -> bytes | None:
        """One SSE event (its lines, without the blank line): the bytes to forward, or None."""
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return None
        try:
            raw = upstream_json(data)
            event = finite(raw)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to walk
            raw = event = None
        kind = event.get("type") if isinstance(event, dict) else None
        if not isinstance(kind, str) or self.terminal is not None:
            self.skipped += 1
            return None
        if kind in TERMINAL_EVENTS and not isinstance(event.get("response"), dict):
            self.skipped += 1
            return None
        try:
            out = sse_event(kind, event)
        except (ValueError, RecursionError):
            self.skipped += 1
            return None
        self.chunks += 1
        sequence = event.get("sequence_number")
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            self.last_sequence = max(self.last_sequence, sequence)
        if kind == "error" or kind == "response.failed":
            error = event.get("response", {}).get("error") if kind == "response.failed" else event
            message = error.get("message") if isinstance(error, dict) else None
            self.provider_error = str(message)[:300] if message is not None else kind
        if kind in TERMINAL_EVENTS:
            self.usage = raw["response"].get("usage")  # as reported (NaN included): judged at the settle
            self.terminal, self.terminal_name = event, kind
            return None
        self._observe(kind, event)
        return out

    def _observe(self, kind: str, event: dict[str, Any]) -> None:
        index = event.get("output_index")
        pieces = self.text.setdefault(index if isinstance(index, int) else 0, [])
        if kind in TEXT_DELTAS and isinstance(event.get("delta"), str):
            pieces.append(event["delta"])
        elif kind == "response.output_item.added" and isinstance(event.get("item"), dict):
            name = event["item"].get("name")
            if isinstance(name, str):
                pieces.append(name + " ")

    def unfinished(self) -> str | None:
        if self.terminal is None:
            return "the provider's stream ended before its final event"
        if self.terminal_name == "response.failed":
            return "the provider's response failed (response.failed)"
        return None

    def closing_events(self, counts: TokenCounts, cost: str, wants_usage: bool) -> bytes:
        """The terminal event held back, its usage the one charged; a stream that ended without
        one is told so by an `error` event (there is no [DONE] in this API), unless the provider's
        own error event told it already."""
        if self.terminal is None and self.provider_error is not None:
            return b""
        if self.terminal is None:
            error = {
                "type": "error",
                "code": "upstream_stream_incomplete",
                "message": "The provider's stream ended before its final event; you are billed for what was generated.",
                "param": None,
                "sequence_number": self.next_sequence(),
            }
            return sse_event("error", error)
        response = dict(self.terminal["response"])
        response["usage"] = responses_usage(self.usage, counts, cost)
        return sse_event(self.terminal_name, {**self.terminal, "response": response})

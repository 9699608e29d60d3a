"""The Anthropic Messages adapter (POST /v1/messages): what the metered engine needs to know about
Anthropic's request shape, its usage (input_tokens EXCLUDES the cache reads and writes) and its
event stream (message_start ... message_delta, message_stop).

Served only by providers whose `api` is "anthropic"; the client's `anthropic-version` and the
`anthropic-beta` values that do not change what a request costs are passed on to them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import InvalidRequest
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.routing import Route, reply_cap
from ledger.gateway.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TOOLS_OVERHEAD,
    TokenBounds,
    UsageFields,
    completion_tokens_estimate,
    detail,
    upstream_json,
    words,
)
from ledger.gateway.upstream import finite

UPSTREAM_PATH = "/messages"
COUNT_TOKENS_PATH = "/messages/count_tokens"

# The Messages API fields whose cost the service can bound. Refused (absent here) because their
# cost cannot be metered from tokens: `mcp_servers` (remote tool calls), `container` (code
# execution hours), `inference_geo` (a regional price multiplier), `speed` (fast mode, a dearer
# price), and any field Anthropic adds later until it is looked at.
ALLOWED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "service_tier",
    }
)
SERVICE_TIERS = ("auto", "standard_only")
THINKING_TYPES = ("enabled", "disabled", "adaptive")

# Anthropic-defined tools the CLIENT runs (bash, the text editor, computer use): they cost tokens
# only (a tool definition and a system prompt Anthropic documents at 245 to about 1,250 tokens:
# computer use's 735 + 499), so each is bounded at CLIENT_TOOL_TOKENS. Server tools (web search
# and fetch, code execution, tool search, MCP) are billed per use or per hour: refused.
CLIENT_TOOL_PREFIXES = ("bash_", "text_editor_", "computer_")
CLIENT_TOOL_TOKENS = 2_000

# Anthropic bills an image at about width x height / 750 tokens after resizing it: at most about
# 1,600 tokens (1.15 megapixels) for most models, about 4,800 for the models that take images up
# to 2,576 px. 5,000 bounds either.
IMAGE_TOKENS = 5_000
# What an image most likely costs (the estimate, for a request whose usage never came): Anthropic
# resizes a larger image to about 1.15 megapixels, 1,600 tokens.
IMAGE_ESTIMATE = 1_600
# A document's estimate (unknowable before Anthropic reads it: a PDF's pages are text and an image
# each): a text document at 4 bytes a token, a base64 PDF at a token per 16 base64 characters
# (12 bytes), a URL's document (unseen) DOCUMENT_URL_ESTIMATE.
DOCUMENT_URL_ESTIMATE = 3_000
DOCUMENT_BASE64_CHARS_PER_TOKEN = 16
# A PDF is billed per page as text and as an image, and a URL's document is unseen before the
# provider fetches it: a document is bounded by the model's context window (the hold and the
# bound cap every prompt there).
DOCUMENT_TOKENS = 2**31 - 1

# anthropic-beta values passed on: they change behaviour, not what a token costs (or what they
# change is priced: 1-hour cache writes at cache_write_1h, longer outputs within max_tokens).
# Refused: any other (the 1M context window's long-context prices beyond the catalog's window,
# the Files API's unseen files, server tools, MCP, fast mode...).
ALLOWED_BETAS = frozenset(
    {
        "messages-2023-12-15",
        "tools-2024-04-04",
        "tools-2024-05-16",
        "prompt-caching-2024-07-31",
        "pdfs-2024-09-25",
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "token-counting-2024-11-01",
        "max-tokens-3-5-sonnet-2024-07-15",
        "output-128k-2025-02-19",
        "token-efficient-tools-2025-02-19",
        "extended-cache-ttl-2025-04-11",
        "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14",
    }
)
CACHE_TTLS = (None, "5m", "1h")

TEXT_BLOCKS = ("text",)
# blocks whose token count their JSON bytes bound
BYTE_BLOCKS = ("text", "tool_use", "tool_result", "thinking", "redacted_thinking")


def _invalid(message: str, param: str, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, param=param[:200], code=code)


def _unsupported(param: str, why: str) -> InvalidRequest:
    return _invalid(f"Unsupported parameter: '{param[:200]}' {why}.", param, "unsupported_parameter")


def _check_cache_control(block: dict[str, Any], where: str) -> None:
    control = block.get("cache_control")
    if control is None:
        return
    if not isinstance(control, dict) or control.get("type") != "ephemeral" or control.get("ttl") not in CACHE_TTLS:
        raise _unsupported(f"{where}.cache_control", "must be {'type': 'ephemeral'} with a ttl of '5m' or '1h'")
    extra = set(control) - {"type", "ttl"}
    if extra:
        raise _unsupported(f"{where}.cache_control.{sorted(extra)[0]}", "is not supported by this gateway")


def _block_tokens(block: Any, where: str, *, nested: bool = False) -> int:
    """The tokens a content block adds beside its JSON bytes (an image's, a document's); raises
    InvalidRequest for a block the service cannot bound."""
    if not isinstance(block, dict):
        raise _invalid(f"{where} must be a content block object.", where, "invalid_content_block")
    _check_cache_control(block, where)
    kind = block.get("type")
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        return DOCUMENT_TOKENS
    if kind in BYTE_BLOCKS and not nested:
        if kind == "tool_result" and isinstance(block.get("content"), list):
            return sum(
                _block_tokens(part, f"{where}.content[{number}]", nested=True)
                for number, part in enumerate(block["content"])
            )
        return 0
    if kind == "text":
        return 0
    raise _invalid(
        f"{where}: content blocks of type {json.dumps(kind)[:40]} cannot be metered by this gateway; send text,"
        " image, document, tool_use, tool_result, thinking or redacted_thinking blocks.",
        where,
        "unsupported_content_block",
    )


def _stripped(block: Any) -> Any:
    """The block as counted by its bytes: images and documents (bounded on their own) left out."""
    if not isinstance(block, dict):
        return block
    if block.get("type") in ("image", "document"):
        return {"type": block["type"]}
    if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        return {**block, "content": [_stripped(part) for part in block["content"]]}
    return block


def _check_tools(tools: Any) -> int:
    """The tokens the client tools add beside their JSON; refuses server tools."""
    if tools is None:
        return 0
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array of tool definitions.", "tools", "invalid_tools")
    extra = 0
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise _invalid(f"'{where}' must be a tool definition object.", where, "invalid_tools")
        _check_cache_control(tool, where)
        kind = tool.get("type")
        if kind is None or kind == "custom":
            continue
        if isinstance(kind, str) and kind.startswith(CLIENT_TOOL_PREFIXES):
            extra += CLIENT_TOOL_TOKENS
            continue
        raise _unsupported(
            f"{where}.type",
            "must be a custom tool (no type, or 'custom') or a client tool (bash, text_editor, computer):"
            " server tools are billed per use and cannot be metered",
        )
    return extra


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _invalid("'system' must be a string or an array of text blocks.", "system", "invalid_system")
    for index, block in enumerate(system):
        where = f"system[{index}]"
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _invalid(f"'{where}' must be a text block.", where, "invalid_system")
        _check_cache_control(block, where)


def _check_messages(messages: Any) -> int:
    """The tokens the messages' images and documents add; refuses what cannot be bounded."""
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _invalid("'messages' must be a non-empty array of message objects.", "messages", "invalid_messages")
    extra = 0
    for index, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            raise _invalid(
                f"'messages[{index}].role' must be 'user' or 'assistant'.", f"messages[{index}].role", "invalid_role"
            )
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _invalid(
                f"'messages[{index}].content' must be a string or an array of content blocks.",
                f"messages[{index}].content",
                "invalid_messages",
            )
        for number, block in enumerate(content):
            extra += _block_tokens(block, f"messages[{index}].content[{number}]")
    return extra


def _positive_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(f"'{param}' must be a positive integer.", param, "invalid_max_tokens")
    return value


def _check_thinking(thinking: Any, max_tokens: int) -> None:
    """Thinking tokens are output tokens within max_tokens: any budget below it is bounded."""
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in THINKING_TYPES:
        raise _invalid("'thinking.type' must be 'enabled', 'disabled' or 'adaptive'.", "thinking.type")
    if thinking["type"] == "enabled":
        budget = _positive_int(thinking.get("budget_tokens"), "thinking.budget_tokens")
        if budget >= max_tokens:
            raise _invalid("'thinking.budget_tokens' must be less than 'max_tokens'.", "thinking.budget_tokens")


def beta_header(values: list[str]) -> str | None:
    """The anthropic-beta header to pass on (None: none was sent); refuses a beta whose cost this
    gateway cannot meter."""
    betas = [beta.strip() for value in values for beta in value.split(",") if beta.strip()]
    for beta in betas:
        if beta not in ALLOWED_BETAS:
            raise _unsupported(
                f"anthropic-beta: {beta}", "is not supported by this gateway: its cost could not be metered"
            )
    return ",".join(betas) or None


def client_headers(version: str | None, betas: list[str]) -> dict[str, str]:
    """The client's Anthropic headers passed on to the provider."""
    headers = {}
    if version:
        headers["anthropic-version"] = version
    if (beta := beta_header(betas)) is not None:
        headers["anthropic-beta"] = beta
    return headers


def _text_of(content: Any) -> str:
    """The text of a message's content or a system prompt (text blocks and tool results only:
    earlier turns' thinking is not billed as input)."""
    if isinstance(content, str):
        return content
    pieces = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            pieces.append(block["text"])
        elif block.get("type") == "tool_result":
            pieces.append(_text_of(block.get("content")))
    return "\n".join(pieces)


# The token types an Anthropic usage reports (anthropic_usage_fields' keys).
MESSAGES_TOKEN_TYPES = frozenset({"input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning"})


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int
    headers: dict[str, str]
    # prompt material: {"system", "messages", "tools"} as counted by their JSON bytes
    counted: dict[str, Any]
    extra_tokens: int  # images, documents, client tools, the tool-use prompt

    endpoint = "messages"
    prompts = 1
    token_types = MESSAGES_TOKEN_TYPES
    provider_api = "anthropic"
    wants_usage = True  # every stream of Anthropic's ends with its usage (message_delta)

    @property
    def description(self) -> str:
        return f"{self.model} request in flight"

    def prompt_upper_bound(self) -> int:
        """One token per UTF-8 byte of the prompt's JSON, plus what is bounded apart."""
        size = len(json.dumps(self.counted, ensure_ascii=False).encode())
        return size + self.extra_tokens + MESSAGE_OVERHEAD * len(self.counted["messages"]) + REPLY_PRIMING

    def most_completion_tokens(self, route: Route) -> int:
        """The max_tokens sent to `route`: the client's, cut to the model's output limit. A thinking
        budget must stay below what is sent (Anthropic refuses budget_tokens >= max_tokens): one the
        cut would put at or above it is refused here, before anything is held (the budget was once
        kept at 40,000 while max_tokens was cut to 32,768, and Anthropic refused every such call)."""
        cap = reply_cap(route, self.max_tokens)
        thinking = self.body.get("thinking")
        budget = (
            thinking.get("budget_tokens") if isinstance(thinking, dict) and thinking.get("type") == "enabled" else None
        )
        if isinstance(budget, int) and budget >= cap:
            raise _invalid(
                f"'thinking.budget_tokens' ({budget}) must be less than max_tokens, and {self.model} generates at"
                f" most {cap} tokens: send a budget_tokens below {cap}.",
                "thinking.budget_tokens",
            )
        return cap

    def _parts_estimate(self) -> int:
        """The estimate of the messages' images and documents (their bounds are the hold's)."""
        total = 0
        pending: list[Any] = [m.get("content") for m in self.body.get("messages") or [] if isinstance(m, dict)]
        while pending:
            content = pending.pop()
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "image":
                    total += IMAGE_ESTIMATE
                elif block.get("type") == "document":
                    source = block.get("source")
                    source = source if isinstance(source, dict) else {}
                    data = source.get("data")
                    if not isinstance(data, str):  # a URL's document, or the content blocks of one
                        total += DOCUMENT_URL_ESTIMATE
                    elif source.get("type") == "text":
                        total += math.ceil(len(data) / 4)
                    else:  # a PDF's bytes are mostly compressed streams: far fewer tokens than bytes
                        total += math.ceil(len(data) / DOCUMENT_BASE64_CHARS_PER_TOKEN)
                elif block.get("type") == "tool_result":
                    pending.append(block.get("content"))
        return total

    def _prompt_text(self) -> list[str]:
        system = self.body.get("system")
        texts = [_text_of(message.get("content")) for message in self.counted["messages"]]
        return ([_text_of(system)] if system else []) + texts

    def bounds(self, route: Route, completion_floor: int, reply_text: str) -> TokenBounds:
        texts = self._prompt_text()
        size = sum(len(text.encode()) for text in texts)
        if self.counted.get("tools"):
            size += len(json.dumps(self.counted["tools"]).encode())
        return TokenBounds(
            prompt_floor=sum(words(text) + 1 for text in texts),  # each message's role is a token at least
            prompt_ceiling=min(self.prompt_upper_bound(), route.price.context_window),
            completion_floor=completion_floor,
            completion_ceiling=self.most_completion_tokens(route),
            prompt_estimate=math.ceil(size / 4)
            + MESSAGE_OVERHEAD * len(texts)
            + REPLY_PRIMING
            + self._parts_estimate(),
            completion_estimate=completion_tokens_estimate(reply_text),
        )

    def upstream_request(self, route: Route) -> tuple[str, bytes]:
        """The route's body: its max_tokens the hold's, its model the route's own name."""
        body = {**self.body, "max_tokens": reply_cap(route, self.max_tokens), "model": route.price.model}
        return UPSTREAM_PATH, json.dumps(body, separators=(",", ":")).encode()

    def usage_fields(self, reported: Any) -> UsageFields:
        return anthropic_usage_fields(reported)

    def read_answer(self, payload: dict[str, Any]) -> list[str]:
        return [answer_text(payload.get("content"))]

    def charged_answer(self, payload: dict[str, Any], reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
        payload["usage"] = anthropic_usage(reported, counts, cost)
        return payload

    def stream_meter(self) -> MessagesStreamMeter:
        return MessagesStreamMeter()

    @staticmethod
    def stream_error(message: str, code: str) -> bytes:
        """Anthropic's mid-stream error event (the SDK raises it as an APIStatusError)."""
        return sse("error", {"type": "error", "error": {"type": "api_error", "message": f"{message} ({code})"}})


def answer_text(content: Any) -> str:
    """The generated text of an answer's content blocks (text, thinking, tool calls): the floor
    and the estimate of its output tokens."""
    pieces = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        for key in ("text", "thinking"):
            if isinstance(block.get(key), str):
                pieces.append(block[key])
        if block.get("type") == "tool_use":
            pieces.append(f" {block.get('name', '')} {json.dumps(block.get('input'), default=str)}")
    return "\n".join(pieces)


def parse_messages_request(
    body: dict[str, Any], version: str | None = None, betas: list[str] | None = None
) -> MessagesRequest:
    """The request, checked: anything whose cost cannot be bounded is refused (InvalidRequest)."""
    for key in body:
        if key not in ALLOWED_FIELDS:
            raise _unsupported(key, "is not supported by this gateway: its cost could not be metered")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' is required and must be a string.", "model", "missing_model")
    if "max_tokens" not in body:
        raise _invalid("'max_tokens' is required.", "max_tokens", "invalid_max_tokens")
    max_tokens = _positive_int(body["max_tokens"], "max_tokens")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean.", "stream", "invalid_stream")
    if body.get("service_tier") not in (None, *SERVICE_TIERS):
        raise _unsupported("service_tier", "may only be 'auto' or 'standard_only' here")
    _check_system(body.get("system"))
    extra = _check_messages(body.get("messages"))
    tools = body.get("tools")
    extra += _check_tools(tools)
    if tools:
        extra += TOOLS_OVERHEAD
    _check_thinking(body.get("thinking"), max_tokens)
    counted = {
        "system": body.get("system"),
        "messages": [
            {**message, "content": [_stripped(block) for block in message["content"]]}
            if isinstance(message.get("content"), list)
            else message
            for message in body["messages"]
        ],
        "tools": tools,
    }
    headers = client_headers(version, betas or [])
    return MessagesRequest(body, model, stream, max_tokens, headers, counted, min(extra, DOCUMENT_TOKENS))


def anthropic_usage_fields(reported: Any) -> UsageFields:
    """The counts of an Anthropic usage object. Its input_tokens leave out the cache reads and
    writes: the input total is the three's sum (a part that is not a count makes the total one)."""
    parts = {
        key: detail(reported, key) for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    total: Any = 0
    for key, value in parts.items():
        if value is None and key != "input_tokens":
            continue  # an optional count not reported: none of it
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            total = value
            break
        total += value
    fields: UsageFields = {
        "input": ("input_tokens+cache_creation_input_tokens+cache_read_input_tokens", total),
        "output": ("output_tokens", detail(reported, "output_tokens")),
    }
    if isinstance(reported, dict) and reported.get("input_tokens") is None:
        fields["input"] = ("input_tokens", None)
    for kind, path in (
        ("cache_read", ("cache_read_input_tokens",)),
        ("cache_write", ("cache_creation_input_tokens",)),
        ("cache_write_1h", ("cache_creation", "ephemeral_1h_input_tokens")),
        ("reasoning", ("output_tokens_details", "thinking_tokens")),
    ):
        fields[kind] = (".".join(path), detail(reported, *path))
    return fields


def anthropic_usage(reported: Any, counts: TokenCounts, cost: str) -> dict[str, Any]:
    """An Anthropic usage object with the counts charged and the cost (the reported one's other
    fields, such as service_tier, kept)."""
    usage: dict[str, Any] = finite(reported) if isinstance(reported, dict) else {}
    usage = {
        **usage,
        "input_tokens": counts.input - counts.cache_read - counts.cache_write,
        "cache_creation_input_tokens": counts.cache_write,
        "cache_read_input_tokens": counts.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": counts.cache_write - counts.cache_write_1h,
            "ephemeral_1h_input_tokens": counts.cache_write_1h,
        },
        "output_tokens": counts.output,
        "cost": cost,
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) or counts.reasoning:
        usage["output_tokens_details"] = {
            **(details if isinstance(details, dict) else {}),
            "thinking_tokens": counts.reasoning,
        }
    return usage


def sse(event: str, payload: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


@dataclass
class MessagesStreamMeter:
    """Follows an Anthropic Messages SSE stream event by event.

    Every event is forwarded as it comes but message_delta and message_stop: the usage they end
    with is settled first, then sent with the counts and cost charged. The usage is message_start's
    updated by message_delta's (its counts are cumulative: they replace, they do not add).
    """

    usage: Any = None
    chunks: int = 0
    skipped: int = 0
    delta: dict[str, Any] = field(default_factory=dict)  # the last message_delta's `delta`
    text: list[str] = field(default_factory=list)
    errored: bool = False
    stopped: bool = False  # message_stop came: the message ended as Anthropic ends one
    provider_error: str | None = None  # the message of Anthropic's `error` event

    def event(self, lines: list[str]) -> bytes | None:
        """One SSE event (its lines, without the blank line): the bytes to forward, or None."""
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return None
        try:
            raw = upstream_json(data)
            payload = finite(raw)
        except (ValueError, RecursionError):
            raw = payload = None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or (name is not None and name != kind):
            self.skipped += 1
            return None
        if kind == "error" and self.chunks == 0:
            self.skipped += 1  # nothing started: the engine answers a 502, nothing charged
            return None
        if not self._observe(kind, raw, payload):
            return None
        try:
            return sse(kind, payload)
        except (ValueError, RecursionError):
            self.skipped += 1
            return None

    def _observe(self, kind: str, raw: dict[str, Any], payload: dict[str, Any]) -> bool:
        """Reads one event; False when it is held back (or not one of a message's)."""
        if kind == "message_start":
            message = raw.get("message")
            if not isinstance(message, dict):
                self.skipped += 1
                return False
            self.usage = message.get("usage")
        elif kind == "message_delta":
            update = raw.get("usage")
            if isinstance(self.usage, dict) and isinstance(update, dict):
                self.usage = {**self.usage, **{k: v for k, v in update.items() if v is not None}}
            elif update is not None:
                self.usage = update
            if isinstance(payload.get("delta"), dict):
                self.delta = payload["delta"]
            self.chunks += 1
            return False
        elif kind == "message_stop":
            self.stopped = True
            return False
        elif kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                self.text.append(f" {block.get('name', '')} ")
            for key in ("text", "thinking"):
                if isinstance(block, dict) and isinstance(block.get(key), str):
                    self.text.append(block[key])
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            for key in ("text", "partial_json", "thinking"):
                if isinstance(delta, dict) and isinstance(delta.get(key), str):
                    self.text.append(delta[key])
        elif kind == "error":
            self.errored = True
            error = payload.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.provider_error = str(message)[:300] if message is not None else "error event"
        elif kind == "ping":
            return self.chunks > 0  # a ping before the message: nothing to commit a 200 to yet
        elif kind != "content_block_stop":
            self.skipped += 1
            return False
        self.chunks += 1
        return True

    @property
    def generated_text(self) -> str:
        return "".join(self.text)

    @property
    def words(self) -> int:
        return words(self.generated_text)

    def unfinished(self) -> str | None:
        if self.errored:
            return "the provider's stream ended with an error event"
        return None if self.stopped else "the provider's stream ended before message_stop"

    def closing_events(self, counts: TokenCounts, cost: str, wants_usage: bool) -> bytes:
        """message_delta with the usage charged (and its cost), then message_stop. After the
        provider's own error event the client's SDK has stopped reading: nothing follows it."""
        if self.errored:
            return b""
        delta = {"stop_reason": None, "stop_sequence": None, **self.delta}
        usage = anthropic_usage(self.usage, counts, cost)
        return sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}) + sse(
            "message_stop", {"type": "message_stop"}
        )

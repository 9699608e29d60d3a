"""Token counts the service makes itself: bounds, floors and estimates, with no tokenizer.

No tokenizer is shipped (the usual ones download their vocabularies at run time), so the service
reasons from what it can see:

- Upper bound of a prompt (the hold, and the most an upstream's `prompt_tokens` is believed):
  one token per UTF-8 byte of the messages' JSON (byte-level BPE tokenizers never make a token of
  less than one byte), plus per-message and reply-priming overhead, plus a fixed allowance when
  tools are declared (providers add a tool-use system prompt), plus a documented bound per
  non-text part (`PART_TOKENS`), and never more than the model's context window.
- Lower bound of a text (the floor under what an upstream reports): the number of
  whitespace-separated words. Every major tokenizer (tiktoken's regex, SentencePiece with
  whitespace splitting, Anthropic's) splits on whitespace before merging, so each word is at
  least one token; an honest upstream's count is never below it.
- Estimates (when nothing usable was reported: the client left, the stream broke, the answer
  never came): the usual 4 bytes a token for text, and for every other part its own estimate,
  what such a part most likely costs (`PART_ESTIMATES` below, docs/bounds-and-estimates.md), never
  its bound: the bound is the most a part can cost, for the hold; charging it for a request whose
  usage never came overcharged an image 60 times. Kept between the floor and the bound.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from ledger.gateway.pricing import TokenCounts

MESSAGE_OVERHEAD = 4  # role and separators per chat message
REPLY_PRIMING = 3  # tokens that start the assistant's reply
TOOLS_OVERHEAD = 1000  # the tool-use system prompt some providers add when tools are declared

# The most one non-text content part can add to a prompt. Images: gpt-4o-mini bills a low-detail
# image as 2,833 tokens and a high-detail one up to 2,833 + 8 x 5,667 = 48,169; other models
# bill less. Audio: about 10 tokens a second, and a low-bitrate codec (Opus, AMR at 6 kbit/s) packs
# a second into 750 bytes, 75 bytes a token: the bound is 1 token per 16 characters of the base64
# data (12 bytes of audio), over 6x that, plus 100; always within the model's context window.
IMAGE_LOW_TOKENS = 3_000
IMAGE_HIGH_TOKENS = 50_000
AUDIO_BASE64_CHARS_PER_TOKEN = 16
AUDIO_TOKENS_MIN = 100

# What a non-text part most likely costs (the estimate, for a request whose usage never came).
# Images at OpenAI: low detail 85 tokens; high (and auto) 85 + 170 per 512-px tile of the image
# scaled into 2048 x 2048 then 768 px on its short side: a 1024 x 1024 image is 4 tiles, 765.
# Audio: about 10 tokens a second of speech; at 32 kbit/s (a usual voice codec setting) a second
# is 4,000 bytes, 5,333 base64 characters: 1 token per 512 characters.
IMAGE_LOW_ESTIMATE = 85
IMAGE_HIGH_ESTIMATE = 765
AUDIO_BASE64_CHARS_PER_TOKEN_ESTIMATE = 512


class UnboundedPart(ValueError):
    """A content part whose token count cannot be bounded before the upstream reads it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _part_tokens(part: dict[str, Any], where: str) -> int:
    """Token bound of one non-text content part; raises UnboundedPart for parts with none."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
        if detail not in ("low", "high", "auto", None):
            raise UnboundedPart(f"{where}: image detail must be 'low', 'high' or 'auto'.", where)
        return IMAGE_LOW_TOKENS if detail == "low" else IMAGE_HIGH_TOKENS
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        if not isinstance(data, str):
            raise UnboundedPart(f"{where}: input_audio needs its base64 'data'.", where)
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise UnboundedPart(f"{where}: input_audio 'data' is not valid base64.", where) from None
        return AUDIO_TOKENS_MIN + math.ceil(len(data) / AUDIO_BASE64_CHARS_PER_TOKEN)
    raise UnboundedPart(
        f"{where}: content parts of type {json.dumps(kind)[:40]} cannot be metered before the provider"
        " reads them (files and unknown types are refused); send text, image_url or input_audio.",
        where,
    )


def _part_estimate(part: dict[str, Any]) -> int:
    """What one non-text part (already bounded by _part_tokens) most likely costs."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
        return IMAGE_LOW_ESTIMATE if detail == "low" else IMAGE_HIGH_ESTIMATE
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else ""
        return math.ceil(len(data if isinstance(data, str) else "") / AUDIO_BASE64_CHARS_PER_TOKEN_ESTIMATE)
    return 0


def parts_estimate(messages: list[Any]) -> int:
    """The estimate of every non-text part of the messages."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") not in ("text", "refusal"):
                total += _part_estimate(part)
    return total


def _strip_parts(message: dict[str, Any], index: int) -> tuple[dict[str, Any], int]:
    """The message without its non-text parts, and the token bound of those parts."""
    content = message.get("content")
    if not isinstance(content, list):
        return message, 0
    kept, extra = [], 0
    for number, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") in ("text", "refusal"):
            kept.append(part)
        elif isinstance(part, dict):
            extra += _part_tokens(part, f"messages[{index}].content[{number}]")
        else:
            kept.append(part)  # a bare string or other JSON: counted by its bytes
    return {**message, "content": kept}, extra


def check_parts(messages: list[Any]) -> None:
    """Raises UnboundedPart for a part the service cannot bound (before anything is held)."""
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            _strip_parts(message, index)


def prompt_tokens_upper_bound(messages: list[Any], extra: object = None, context_window: int | None = None) -> int:
    """The most tokens the prompt can be. `extra`: prompt material beside the messages (tools,
    functions, a response schema), counted by its JSON."""
    total = REPLY_PRIMING
    if extra:
        total += len(json.dumps(extra, ensure_ascii=False).encode()) + TOOLS_OVERHEAD
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            stripped, parts = _strip_parts(message, index)
            total += len(json.dumps(stripped, ensure_ascii=False).encode()) + parts
        total += MESSAGE_OVERHEAD
    return total if context_window is None else min(total, context_window)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _messages_bytes(messages: list[Any], extra: object) -> tuple[int, int]:
    size = len(json.dumps(extra).encode()) if extra else 0
    for message in messages:
        if isinstance(message, dict):
            size += len(_text_of(message.get("content")).encode())
            size += len(str(message.get("name", "")).encode())
            if message.get("tool_calls"):
                size += len(str(message["tool_calls"]).encode())
    return size, len(messages)


def prompt_tokens_estimate(messages: list[Any], extra: object = None) -> int:
    """Every part of the prompt: its text at 4 bytes a token, and its images and audio at their
    estimates (10 high-detail images once counted as 24 tokens here, their text alone)."""
    size, count = _messages_bytes(messages, extra)
    return math.ceil(size / 4) + MESSAGE_OVERHEAD * count + REPLY_PRIMING + parts_estimate(messages)


def prompt_tokens_floor(messages: list[Any]) -> int:
    """The fewest tokens the prompt can be: the words of its text."""
    return sum(
        words(_text_of(message.get("content"))) + 1  # the role is at least a token
        for message in messages
        if isinstance(message, dict)
    )


def completion_tokens_estimate(text: str) -> int:
    # an upstream's text may hold lone surrogates (a truncated emoji, "\ud83d" in its JSON): they
    # are counted as the 3 bytes they take, never an error that leaves the request unsettled
    return math.ceil(len(text.encode(errors="surrogatepass")) / 4)


def words(text: str) -> int:
    """Whitespace-separated words: a lower bound of any major tokenizer's count."""
    return len(text.split())


class TextByIndex:
    """A stream meter's generated text, kept per choice or output item (`text`: index -> pieces),
    so each one's words are counted on their own: the floor under the completion's tokens."""

    text: dict[int, list[str]]

    @property
    def generated_text(self) -> str:
        return "\n".join("".join(pieces) for pieces in self.text.values())

    @property
    def words(self) -> int:
        return sum(words("".join(pieces)) for pieces in self.text.values())


@dataclass(frozen=True, slots=True)
class TokenBounds:
    """What the request implies about its token counts."""

    prompt_floor: int
    prompt_ceiling: int
    completion_floor: int
    completion_ceiling: int
    prompt_estimate: int
    completion_estimate: int


# What an adapter read from an API's usage object: token type (ledger.gateway.pricing.TOKEN_TYPES)
# -> (the API's own name for it, the value reported, which may be anything). "input" and "output"
# are the totals; a type the API did not report is absent.
UsageFields = dict[str, tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class CountedUsage:
    counts: TokenCounts
    anomaly: str | None  # why the reported usage was not taken as it came; None = it was (or none came)
    reported: str | None  # the reported usage as JSON text, for the usage row

    @property
    def prompt_tokens(self) -> int:
        return self.counts.input

    @property
    def completion_tokens(self) -> int:
        return self.counts.output


def _reported_text(reported: Any) -> str | None:
    if reported is None:
        return None
    try:
        return json.dumps(reported, default=str)[:2000]
    except (ValueError, TypeError, RecursionError):
        return repr(reported)[:2000]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def bounded_usage(reported: Any, fields: UsageFields, bounds: TokenBounds) -> CountedUsage:
    """The token counts to charge: the upstream's, when they are whole non-negative numbers within
    the request's bounds; otherwise clamped into [floor, ceiling] (or the local estimate, clamped,
    for a total that is missing or not a count), with the reason recorded as an anomaly. A part
    (cached, reasoning, audio ...) that is not a count is taken as 0, and parts that do not fit in
    their totals are cut to fit (TokenCounts.consistent): either way as an anomaly."""
    anomalies: list[str] = []
    if reported is None:
        anomalies.append("no usage reported: counted from the request and the answer")
    elif not isinstance(reported, dict):
        anomalies.append(f"usage is a {type(reported).__name__}, not an object")

    # what each total's floor measured: the prompt's words as sent, the answer's words as delivered
    floor_of = {"input": "words in the prompt", "output": "words delivered"}

    def total(kind: str, floor: int, ceiling: int, estimate: int) -> int:
        floor = min(floor, ceiling)
        key, raw = fields.get(kind, (f"{kind}_tokens", None))
        value = _count(raw)
        if value is None:
            if raw is not None:
                anomalies.append(f"{key} {str(raw)[:40]!r} is not a count")
            elif isinstance(reported, dict):
                anomalies.append(f"{key} missing")
            return min(max(estimate, floor), ceiling)
        if value > ceiling:
            anomalies.append(f"{key} {value} above the request's bound {ceiling}")
            return ceiling
        if value < floor:
            anomalies.append(f"{key} {value} below the {floor} {floor_of[kind]}")
            return floor
        return value

    parts: dict[str, int] = {}
    for kind, (key, raw) in fields.items():
        if kind in ("input", "output") or raw is None:
            continue
        value = _count(raw)
        if value is None:
            anomalies.append(f"{key} {str(raw)[:40]!r} is not a count")
        parts[kind] = value or 0
    counts, cut = TokenCounts(
        input=total("input", bounds.prompt_floor, bounds.prompt_ceiling, bounds.prompt_estimate),
        output=total("output", bounds.completion_floor, bounds.completion_ceiling, bounds.completion_estimate),
        **parts,
    ).consistent()
    anomalies.extend(cut)
    return CountedUsage(counts, "; ".join(anomalies) or None, _reported_text(reported))


def fields_at(reported: Any, paths: dict[str, tuple[str, ...]]) -> UsageFields:
    """An API's usage read at `paths` (token type -> where the API reports it)."""
    return {kind: (".".join(path), detail(reported, *path)) for kind, path in paths.items()}


def detail(usage: Any, *path: str) -> Any:
    """usage[path[0]][path[1]]...: None where a level is missing. A level below the top that is
    there but is not an object reads as text saying so: never a count, so it is recorded as an
    anomaly (and its part counts nothing)."""
    for depth, key in enumerate(path):
        if not isinstance(usage, dict):
            return f"{str(usage)[:20]!r} where an object belongs" if depth > 0 and usage is not None else None
        usage = usage.get(key)
    return usage


def _bounded_int(text: str) -> int | float:
    # Python refuses to convert integers over 4300 digits; such a count is absurd anyway.
    return int(text) if len(text) <= 100 else float("inf")


def upstream_json(text: str | bytes) -> Any:
    """json.loads for an upstream's answer: absurdly long integers become infinity (a non-count)
    instead of raising; NaN and Infinity are read as floats (non-counts too)."""
    return json.loads(text, parse_int=_bounded_int)

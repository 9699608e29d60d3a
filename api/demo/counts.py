"""The demo provider's token counts: deterministic, and within every bound the gateway puts on an
upstream's report, so each demo call is charged exactly as reported (no anomaly).

- prompt: the gateway's own estimate (4 bytes a token plus per-message overhead), raised to the
  prompt's words plus one a message (the gateway's floor), never above the request body's UTF-8
  bytes (the gateway's ceiling, one token a byte of the prompt's JSON, is never below that figure
  minus the fields around the prompt; the estimate is a quarter of it).
- cached: half the prompt, rounded down, as if every prompt's first half were served from the
  provider's cache: a newcomer sees cached tokens priced on every call, not only past 1,024 tokens.
- Anthropic: a request with a `cache_control` marker anywhere also writes a quarter of its prompt
  to the cache (the 1-hour cache when a marker says `"ttl": "1h"`); `input_tokens` are the rest,
  as Anthropic reports them (excluding cache reads and writes).
- completion: 4 bytes a token, never below the reply's words; a reply longer than the request's
  output limit is cut, at a word, to fit (as a real model stops at max_tokens).
- reasoning (Responses API, when `reasoning` is asked): REASONING_TOKENS, part of the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ledger.gateway.tokens import prompt_tokens_estimate, prompt_tokens_floor, words

REASONING_TOKENS = 8
REPLY_PREFIX = "Hello from the demo provider. You said: "


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the `text` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part["text"]) for part in content if isinstance(part, dict) and "text" in part)
    return ""


def reply_to(said: str) -> str:
    return REPLY_PREFIX + said[:200]


def text_tokens(text: str) -> int:
    return max(math.ceil(len(text.encode()) / 4), words(text))


def prompt_tokens(messages: list[Any], body_bytes: int) -> int:
    """A chat-shaped prompt (role + content messages)."""
    return min(max(prompt_tokens_estimate(messages), prompt_tokens_floor(messages)), body_bytes)


def plain_prompt_tokens(prompts: list[str | list[int]], body_bytes: int) -> int:
    """Prompts with no messages around them (completions, embeddings); a token array is its length."""
    total = sum(len(p) if isinstance(p, list) else text_tokens(p) for p in prompts)
    return min(max(total, 1), body_bytes)


def cached_tokens(prompt: int) -> int:
    return prompt // 2


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    tokens: int
    cut: bool  # stopped at the output limit, not at its end


def fit(text: str, limit: int | None) -> Reply:
    """The reply, cut at a word to at most `limit` tokens."""
    pieces = text.split(" ")
    while limit is not None and pieces and text_tokens(" ".join(pieces)) > limit:
        pieces.pop()
    kept = " ".join(pieces)
    return Reply(kept, text_tokens(kept), kept != text)


def stream_pieces(text: str) -> list[str]:
    """The reply as a stream sends it: word by word, the separating spaces kept."""
    pieces = text.split(" ")
    return [piece if index == 0 else " " + piece for index, piece in enumerate(pieces)]


def cache_markers(body: Any) -> tuple[bool, bool]:
    """(a `cache_control` marker anywhere in the body, one of them asking the 1-hour cache)."""
    marked = hour = False
    pending = [body]
    while pending:  # not recursive: a deep body must not exhaust the stack
        node = pending.pop()
        if isinstance(node, dict):
            control = node.get("cache_control")
            if isinstance(control, dict):
                marked = True
                hour = hour or control.get("ttl") == "1h"
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return marked, hour


def anthropic_usage(prompt: int, output: int, body: dict[str, Any]) -> dict[str, Any]:
    marked, hour = cache_markers(body)
    read = prompt // 2
    written = prompt // 4 if marked else 0
    return {
        "input_tokens": prompt - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if hour else written,
            "ephemeral_1h_input_tokens": written if hour else 0,
        },
        "output_tokens": output,
        "service_tier": "standard",
    }

"""Token counts the service makes itself, when no tokenizer's word is available.

No tokenizer is shipped (the usual ones download their vocabularies at run time), so counts are
estimates from UTF-8 length: English runs near 4 bytes a token, and no common text runs below 3
bytes a token (a CJK character is 3 bytes and at most one token). The reservation uses the
upper bound so a hold covers the prompt; billing from a local count (an upstream that reported no
usage, or a stream that broke) uses the usual 4 bytes a token.
"""

from __future__ import annotations

import json
import math
from typing import Any

MESSAGE_OVERHEAD = 4  # role and separators per chat message
REPLY_PRIMING = 3  # tokens that start the assistant's reply


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
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


def prompt_tokens_upper_bound(messages: list[Any], extra: object = None) -> int:
    """`extra`: prompt material beside the messages (tool definitions), counted by its JSON."""
    size, count = _messages_bytes(messages, extra)
    return math.ceil(size / 3) + MESSAGE_OVERHEAD * count + REPLY_PRIMING


def prompt_tokens_estimate(messages: list[Any], extra: object = None) -> int:
    size, count = _messages_bytes(messages, extra)
    return math.ceil(size / 4) + MESSAGE_OVERHEAD * count + REPLY_PRIMING


def completion_tokens_estimate(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)

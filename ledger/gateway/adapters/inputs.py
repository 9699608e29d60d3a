"""Texts or token arrays: the `input` of embeddings and the `prompt` of legacy completions.

Both APIs take a string, a list of strings, one token array (a list of token ids) or a list of
token arrays; each string or token array is a separate input, tokenized (or embedded) on its own.

Bounds, with no tokenizer (see ledger.gateway.tokens): a string is at most one token per UTF-8
byte, plus `TEXT_OVERHEAD` for the special tokens a tokenizer may add around a text (BOS and EOS,
or BERT's CLS and SEP that most open embedding models add); a token array is exactly its length
(the ids are the tokens). Floor: a string's words, a token array's length.
"""

from __future__ import annotations

import math

from ledger.errors import InvalidRequest
from ledger.gateway.tokens import words

# OpenAI's most inputs in one embeddings request; the same bound keeps a completions request's
# prompts (each a completion of its own) finite
MAX_INPUTS = 2048
TEXT_OVERHEAD = 2
TOKEN_ID_LIMIT = 2**31  # no vocabulary is larger; beyond it a provider's int32 parse fails

Input = str | list[int]


def _invalid(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{param}' must be {what}: a string, an array of strings, an array of token ids or an array of"
        f" token-id arrays, with at most {MAX_INPUTS} entries.",
        param=param,
        code="invalid_input",
    )


def _token_array(value: list[object], param: str) -> list[int]:
    # `type(...) is int`: a bool is not a token id
    if not value or not all(type(token) is int and 0 <= token < TOKEN_ID_LIMIT for token in value):
        raise _invalid(param, f"non-empty token arrays of whole numbers from 0 to {TOKEN_ID_LIMIT - 1}")
    return value  # type: ignore[return-value]


def read_inputs(value: object, param: str, *, empty_text: bool) -> list[Input]:
    """The separate inputs `value` carries, or InvalidRequest. `empty_text`: whether "" is one."""
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list) and value:
        if all(type(item) is int for item in value):
            return [_token_array(value, param)]
        items = value
    else:
        raise _invalid(param, "non-empty")
    if len(items) > MAX_INPUTS:
        raise _invalid(param, f"at most {MAX_INPUTS} inputs")
    if all(isinstance(item, str) for item in items):
        texts: list[Input] = [item for item in items if isinstance(item, str)]
        if not empty_text and any(text == "" for text in texts):
            raise _invalid(param, "made of non-empty strings")
        return texts
    if all(isinstance(item, list) for item in items):
        return [_token_array(item, param) for item in items if isinstance(item, list)]
    raise _invalid(param, "all strings or all token arrays")


def upper_bound(item: Input) -> int:
    return len(item.encode(errors="surrogatepass")) + TEXT_OVERHEAD if isinstance(item, str) else len(item)


def floor(item: Input) -> int:
    return words(item) if isinstance(item, str) else len(item)


def estimate(item: Input) -> int:
    """The usual 4 bytes a token for a text, within its floor and bound; a token array's length."""
    if isinstance(item, list):
        return len(item)
    return min(max(math.ceil(len(item.encode(errors="surrogatepass")) / 4), floor(item)), upper_bound(item))

"""The Messages adapter: its prompt bound, and any usage an upstream reports (in the answer, or in
message_start and message_delta) charged within the request's bounds, never above its hold."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.messages import (
    CLIENT_TOOL_TOKENS,
    IMAGE_TOKENS,
    anthropic_usage_fields,
    parse_messages_request,
)
from ledger.gateway.pricing import ModelPrice
from ledger.gateway.routing import Route, Tariff
from ledger.gateway.tokens import bounded_usage
from ledger.settings import ProviderConfig

PRICE = ModelPrice(
    "anthropic",
    "claude-test",
    Decimal("3"),
    Decimal("15"),
    context_window=200_000,
    max_output_tokens=8192,
    cache_read_usd_per_mtok=Decimal("0.3"),
    cache_write_usd_per_mtok=Decimal("3.75"),
    cache_write_1h_usd_per_mtok=Decimal("6"),
)
ROUTE = Route("anthropic", ProviderConfig(base_url="http://127.0.0.1:1/v1", api="anthropic"), PRICE, None)
TARIFF = Tariff(Decimal("0.10"), Decimal(1), Decimal("0.1"))
BODY = {"model": "claude-test", "max_tokens": 300, "messages": [{"role": "user", "content": "Hi there " * 50}]}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR" * 20_000}}


def sse(name: str, data: str) -> list[str]:
    return [f"event: {name}", f"data: {data}"]


def test_an_image_is_bounded_apart_from_its_bytes_and_a_document_by_the_context_window():
    text_only = parse_messages_request(BODY).prompt_upper_bound()
    content = [{"type": "text", "text": "Hi there " * 50}, IMAGE]
    with_image = parse_messages_request({**BODY, "messages": [{"role": "user", "content": content}]})
    nested = {"type": "tool_result", "tool_use_id": "t", "content": [IMAGE, IMAGE]}
    in_result = parse_messages_request({**BODY, "messages": [{"role": "user", "content": [nested]}]})
    document = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    with_document = parse_messages_request({**BODY, "messages": [{"role": "user", "content": [document]}]})

    assert text_only < with_image.prompt_upper_bound() < text_only + IMAGE_TOKENS + 100, "not 100 KB of base64"
    assert 2 * IMAGE_TOKENS < in_result.prompt_upper_bound() < 2 * IMAGE_TOKENS + 200
    bounds = with_document.bounds(ROUTE, 0, "")
    assert bounds.prompt_ceiling == PRICE.context_window


def test_client_tools_are_bounded_and_server_tools_refused():
    tools = [{"type": "bash_20250124", "name": "bash"}, {"name": "f", "input_schema": {"type": "object"}}]
    plain = parse_messages_request(BODY).prompt_upper_bound()

    assert parse_messages_request({**BODY, "tools": tools}).prompt_upper_bound() > plain + CLIENT_TOOL_TOKENS
    for server_tool in ("web_search_20250305", "web_fetch_20250910", "code_execution_20250825"):
        with pytest.raises(InvalidRequest, match="server tools"):
            parse_messages_request({**BODY, "tools": [{"type": server_tool, "name": "x"}]})


def test_the_input_total_adds_the_cache_reads_and_writes():
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 200,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
        "output_tokens": 7,
    }
    request = parse_messages_request({**BODY, "messages": [{"role": "user", "content": "word " * 100}]})

    counted = bounded_usage(usage, anthropic_usage_fields(usage), request.bounds(ROUTE, 1, "x"))

    assert counted.anomaly is None
    assert (counted.counts.input, counted.counts.cache_read, counted.counts.cache_write) == (240, 200, 30)
    assert (counted.counts.cache_write_1h, counted.counts.output) == (20, 7)


COUNT_KEYS = [
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "ephemeral_1h_input_tokens",
    "ephemeral_5m_input_tokens",
    "output_tokens_details",
    "thinking_tokens",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**7)
    | st.integers(min_value=10**100, max_value=10**120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(COUNT_KEYS), inner, max_size=6),
    max_leaves=12,
)
USAGE = st.dictionaries(st.sampled_from(COUNT_KEYS), JSON, max_size=8) | JSON


def charged_within_bounds(reported: object, words_out: int, text: str) -> None:
    request = parse_messages_request(BODY)
    hold = TARIFF.most_it_can_cost([ROUTE], request.prompt_upper_bound(), request.most_completion_tokens)
    bounds = request.bounds(ROUTE, words_out, text)
    counts = bounded_usage(reported, request.usage_fields(reported), bounds).counts

    assert bounds.prompt_floor <= counts.input <= bounds.prompt_ceiling
    assert bounds.completion_floor <= counts.output <= bounds.completion_ceiling
    assert 0 <= counts.cache_read + counts.cache_write <= counts.input
    assert 0 <= counts.cache_write_1h <= counts.cache_write and 0 <= counts.reasoning <= counts.output
    assert TARIFF.credits(ROUTE, TARIFF.usd(ROUTE, counts)) <= hold
    usage = request.charged_answer({}, reported, counts, "0")["usage"]
    assert usage["input_tokens"] >= 0 and json.dumps(usage, allow_nan=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=USAGE, delta=USAGE)
def test_any_streamed_usage_is_charged_within_the_bounds_never_above_the_hold(start, delta):
    meter = parse_messages_request({**BODY, "stream": True}).stream_meter()
    message = {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": "__U__"}
    starting = json.dumps({"type": "message_start", "message": message}).replace('"__U__"', json.dumps(start))
    ending = json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": "__U__"})
    ending = ending.replace('"__U__"', json.dumps(delta))
    delta_event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "two words"}}

    assert meter.event(sse("message_start", starting)) is not None
    assert meter.event(sse("content_block_delta", json.dumps(delta_event))) is not None
    assert meter.event(sse("message_delta", ending)) is None, "held back until the settle"
    assert meter.event(sse("message_stop", '{"type":"message_stop"}')) is None

    charged_within_bounds(meter.usage, meter.words, meter.generated_text)


@settings(max_examples=300, deadline=None)
@given(reported=USAGE)
def test_any_answered_usage_is_charged_within_the_bounds_never_above_the_hold(reported):
    charged_within_bounds(reported, 2, "two words")

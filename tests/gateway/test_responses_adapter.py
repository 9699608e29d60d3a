"""The Responses adapter on hostile input: a body is either refused with InvalidRequest (a 400) or
bounded; an event stream of any JSON never breaks the meter."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.responses import ALLOWED_FIELDS, ResponsesStreamMeter, parse_responses_request
from ledger.gateway.pricing import TokenCounts
from ledger.gateway.tokens import IMAGE_HIGH_TOKENS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
kinds = st.sampled_from(["message", "input_text", "input_image", "function_call_output", "reasoning", "input_file"])
parts = st.fixed_dictionaries({"type": kinds | json_values}, optional={"text": json_values, "detail": json_values})
items = st.fixed_dictionaries(
    {"type": kinds | json_values},
    optional={
        "role": json_values,
        "content": st.one_of(json_values, st.lists(parts | json_values, max_size=3)),
        "output": st.one_of(json_values, st.lists(parts | json_values, max_size=3)),
    },
)
bodies = st.fixed_dictionaries(
    {"model": st.just("m"), "input": st.one_of(json_values, st.lists(items | json_values, max_size=4))},
    # one other field at a time: most values of most fields are refused before the input is read
    optional={name: json_values for name in sorted(ALLOWED_FIELDS) if name not in ("model", "input")},
).filter(lambda body: len(body) <= 3)


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_any_body_is_refused_as_a_400_or_bounded_above_its_visible_input(body):
    try:
        request = parse_responses_request(body)
    except InvalidRequest:
        return
    bound = request.prompt_upper_bound()
    visible = len(json.dumps(request.items, ensure_ascii=False).encode())
    assert bound >= visible


def test_images_are_bounded_by_their_detail_and_stored_context_by_the_window():
    image = {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"}
    request = parse_responses_request({"model": "m", "input": [{"role": "user", "content": [image]}]})
    assert request.prompt_upper_bound() > IMAGE_HIGH_TOKENS
    reference = parse_responses_request({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]})
    follow_up = parse_responses_request({"model": "m", "input": "hi", "previous_response_id": "resp_1"})
    assert reference.prompt_upper_bound() == follow_up.prompt_upper_bound() > 10**15


@given(
    st.lists(
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"type": st.text(max_size=30)},
                optional={
                    "response": json_values,
                    "delta": json_values,
                    "output_index": json_values,
                    "item": json_values,
                    "sequence_number": json_values,
                },
            ),
        )
    )
)
def test_any_event_stream_is_metered_without_raising(events):
    meter = ResponsesStreamMeter()
    for event in events:
        out = meter.event([f"data: {json.dumps(event)}"])
        assert out is None or out.startswith(b"event: ")
    closing = meter.closing_events(TokenCounts(input=3, output=2), "0.1", True)
    name, data = closing.decode().strip().split("\n")
    payload = json.loads(data.removeprefix("data: "))
    if meter.terminal is None:
        assert name == "event: error" and payload["sequence_number"] == meter.last_sequence
    else:
        assert payload["response"]["usage"]["input_tokens"] == 3 and payload["response"]["usage"]["cost"] == "0.1"

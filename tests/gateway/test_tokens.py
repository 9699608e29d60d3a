"""The token bounds and the clamp of reported usage (ledger.gateway.tokens), as properties."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from ledger.gateway.adapters.chat import openai_usage_fields
from ledger.gateway.tokens import TokenBounds, bounded_usage, prompt_tokens_upper_bound, upstream_json, words

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
counts = st.one_of(json_values, st.integers(min_value=-10, max_value=10**15))
usages = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"prompt_tokens": counts, "completion_tokens": counts, "total_tokens": counts}),
)
bounds = st.builds(
    lambda pf, pc, cf, cc, pe, ce: TokenBounds(pf, pc, cf, cc, pe, ce),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)


@given(usages, bounds)
def test_the_charged_counts_are_always_within_the_requests_bounds(reported, limits):
    counted = bounded_usage(reported, openai_usage_fields(reported), limits)

    assert min(limits.prompt_floor, limits.prompt_ceiling) <= counted.prompt_tokens <= limits.prompt_ceiling
    assert (
        min(limits.completion_floor, limits.completion_ceiling)
        <= counted.completion_tokens
        <= limits.completion_ceiling
    )
    assert type(counted.prompt_tokens) is int and type(counted.completion_tokens) is int
    assert counted.reported is None or len(counted.reported) <= 2000


@given(st.integers(0, 10_000), st.integers(0, 10_000), bounds)
def test_an_honest_count_within_bounds_is_charged_as_reported_with_no_anomaly(prompt, completion, limits):
    reported = {"prompt_tokens": prompt, "completion_tokens": completion}
    counted = bounded_usage(reported, openai_usage_fields(reported), limits)

    # a floor above its ceiling (more words delivered than allowed) yields to the ceiling
    honest = (
        min(limits.prompt_floor, limits.prompt_ceiling) <= prompt <= limits.prompt_ceiling
        and min(limits.completion_floor, limits.completion_ceiling) <= completion <= limits.completion_ceiling
    )
    assert (counted.anomaly is None) == honest
    if honest:
        assert (counted.prompt_tokens, counted.completion_tokens) == (prompt, completion)


@given(st.text(max_size=200))
def test_the_word_floor_never_exceeds_the_byte_bound(text):
    messages = [{"role": "user", "content": text}]
    assert words(text) <= len(text.encode()) <= prompt_tokens_upper_bound(messages)


def test_upstream_json_reads_absurd_numbers_as_non_counts():
    usage = upstream_json('{"a": ' + "9" * 5000 + ', "b": NaN, "c": Infinity}')
    assert math.isinf(usage["a"]) and math.isnan(usage["b"]) and math.isinf(usage["c"])
    reported = usage | {"prompt_tokens": usage["a"]}
    counted = bounded_usage(reported, openai_usage_fields(reported), TokenBounds(1, 10, 1, 10, 5, 5))
    assert counted.prompt_tokens == 5 and "not a count" in counted.anomaly
    json.loads(json.dumps(counted.reported))  # storable as text


def test_a_detail_that_is_not_an_object_is_an_anomaly_and_its_part_counts_nothing():
    reported = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": "all cached"}

    counted = bounded_usage(reported, openai_usage_fields(reported), TokenBounds(1, 100, 1, 100, 5, 5))

    assert (counted.prompt_tokens, counted.counts.cache_read) == (10, 0)
    parts = ("cached_tokens", "cache_write_tokens", "audio_tokens")
    assert counted.anomaly == "; ".join(
        f"prompt_tokens_details.{part} \"'all cached' where an object belongs\" is not a count" for part in parts
    )


def test_no_usage_at_all_is_counted_locally_and_recorded_as_an_anomaly():
    counted = bounded_usage(None, openai_usage_fields(None), TokenBounds(1, 100, 1, 100, 7, 9))

    assert (counted.prompt_tokens, counted.completion_tokens) == (7, 9)
    assert counted.anomaly == "no usage reported: counted from the request and the answer"


def test_an_anomaly_says_what_each_floor_measured():
    """A prompt's floor is its own words, not words delivered (the message once said so of both)."""
    limits = TokenBounds(50, 1000, 20, 1000, 100, 30)
    reported = {"prompt_tokens": 10, "completion_tokens": 5}

    counted = bounded_usage(reported, openai_usage_fields(reported), limits)

    assert "prompt_tokens 10 below the 50 words in the prompt" in counted.anomaly
    assert "completion_tokens 5 below the 20 words delivered" in counted.anomaly

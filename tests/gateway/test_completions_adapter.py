"""The legacy completions adapter's parsing of n and best_of (ledger.gateway.adapters.completions)."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.completions import parse_completions_request


@pytest.mark.parametrize("stream", [False, True])
def test_n_without_best_of_asks_for_n_completions(stream):
    call = parse_completions_request({"model": "m", "prompt": "Say hi", "n": 128, "stream": stream})

    assert call.candidates == 128


def test_best_of_generates_and_bills_its_candidates():
    assert parse_completions_request({"model": "m", "prompt": "a", "n": 2, "best_of": 5}).candidates == 5


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "prompt": "a", "n": 3, "best_of": 2},
        {"model": "m", "prompt": "a", "best_of": 21},
        {"model": "m", "prompt": "a", "best_of": 2, "stream": True},
    ],
)
def test_best_of_below_n_above_20_or_streamed_is_refused(body):
    with pytest.raises(InvalidRequest) as refused:
        parse_completions_request(body)
    assert refused.value.param == "best_of"

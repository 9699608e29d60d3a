"""POST /v1/embeddings through the real openai SDK: held, forwarded, charged for the input tokens."""

from __future__ import annotations

import base64
import struct
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.embeddings import parse_embeddings_request
from ledger.gateway.pricing import ModelPrice, most_cost
from ledger.gateway.routing import Route
from ledger.gateway.tokens import bounded_usage
from ledger.settings import ProviderConfig
from tests.api.conftest import HTTP_TIMEOUT
from tests.api.ledger_state import usage_rows
from tests.fake_openai_apis import vector

MODEL = "embed-test"
INPUT_USD_PER_MTOK = Decimal("100")  # dear, so a few hundred tokens are a visible charge
USD_PER_CREDIT = Decimal("0.10")  # the settings' default; the balanced level's multiplier is 1.0
TEXT = "embed these words " * 60  # 180 words, 1,080 bytes


async def add_price(pool, context_window: int = 8191) -> None:
    await pool.execute(
        "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,"
        " max_output_tokens) VALUES ('openai', $1, $2, 0, $3, 1)",
        MODEL,
        INPUT_USD_PER_MTOK,
        context_window,
    )


def credits(prompt_tokens: int) -> Decimal:
    usd = prompt_tokens * INPUT_USD_PER_MTOK / Decimal(1_000_000)
    return (usd / USD_PER_CREDIT).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


async def nothing_held_or_written(pool, user_id) -> None:
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE user_id = $1", user_id) == 0
    assert await usage_rows(pool, user_id) == []


@pytest.mark.parametrize(
    ("given", "inputs"),
    [
        (TEXT, 1),
        ([TEXT, "a second text", "and a third"], 3),
        ([1, 2, 3] * 200, 1),
        ([[5] * 300, [6, 7] * 150], 2),
    ],
    ids=["string", "strings", "token array", "token arrays"],
)
async def test_embeddings_are_charged_exactly_their_reported_input_tokens(
    pool, openai_apis, start_service, make_account, given, inputs
):
    openai_apis.embedding_tokens = 600
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    raw = service.client(account.key).embeddings.with_raw_response.create(model=MODEL, input=given)
    answer = raw.parse()

    expected = credits(600)
    assert expected == Decimal("0.6")
    assert [item.embedding for item in answer.data] == [vector(i, 8) for i in range(inputs)]
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (600, 600)
    assert Decimal(answer.usage.model_extra["cost"]) == expected
    assert Decimal(raw.headers["x-credits-charged"]) == expected
    sent = openai_apis.requests[0]
    assert sent["path"] == "/v1/embeddings" and sent["body"]["encoding_format"] == "base64", "the SDK's default"
    assert sent["body"]["input"] == given
    assert sent["headers"]["authorization"] == "Bearer sk-platform-openai"
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["api"], row["provider"], row["success"], row["status_code"]) == ("embeddings", "openai", True, 200)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (600, 0, 600)
    assert row["credits_used"] == expected and row["cost_usd"] == Decimal("0.06")
    assert row["usage_anomaly"] is None, "an embeddings usage has no completion_tokens, and needs none"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10 - expected
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "settled"


async def test_float_vectors_pass_through_untouched(pool, openai_apis, start_service, make_account):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    answer = service.client(account.key).embeddings.create(
        model=MODEL, input=["one", "two"], encoding_format="float", dimensions=3, user="u-1"
    )

    assert [item.embedding for item in answer.data] == [vector(0, 3), vector(1, 3)]
    assert openai_apis.requests[0]["body"] == {
        "model": MODEL,
        "input": ["one", "two"],
        "user": "u-1",
        "dimensions": 3,
        "encoding_format": "float",
    }
    base64_answer = service.post(
        "/v1/embeddings", account.key, {"model": MODEL, "input": "one", "encoding_format": "base64"}
    ).json()
    packed = base64.b64decode(base64_answer["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == vector(0, 8)


async def test_many_inputs_are_held_and_charged_beyond_one_context_window(
    pool, openai_apis, start_service, make_account
):
    """Each input is within the context window on its own: three of 200 tokens under a 250-token
    window are 600 tokens, held and charged as such (not cut to one window)."""
    openai_apis.embedding_tokens = 600
    await add_price(pool, context_window=250)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    answer = service.client(account.key).embeddings.create(model=MODEL, input=[[1] * 200, [2] * 200, [3] * 200])

    assert answer.usage.prompt_tokens == 600
    (row,) = await usage_rows(pool, account.user_id)
    assert row["credits_used"] == credits(600) and row["usage_anomaly"] is None


async def test_usage_above_the_requests_bound_is_charged_at_the_bound(pool, openai_apis, start_service, make_account):
    openai_apis.usage_json = '{"prompt_tokens": 1000000, "total_tokens": 1000000, "completion_tokens": 7}'
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    answer = service.client(account.key).embeddings.create(model=MODEL, input=[[9] * 40, [8] * 2])

    assert (answer.usage.prompt_tokens, answer.usage.model_extra["completion_tokens"]) == (42, 0)
    (row,) = await usage_rows(pool, account.user_id)
    assert row["credits_used"] == credits(42)
    assert "prompt_tokens 1000000 above the request's bound 42" in row["usage_anomaly"]
    assert "completion_tokens 7 above the request's bound 0" in row["usage_anomaly"]


async def test_not_enough_credits_is_a_402_before_any_upstream_call(pool, openai_apis, start_service, make_account):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    # the hold is the input's bound: 3,000 token ids = 3 credits
    account = await make_account(credits_="2.999999")

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).embeddings.create(model=MODEL, input=[1] * 3000)

    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_quota" and raised.value.type == "insufficient_quota"
    assert "3.000000 credits" in raised.value.message
    assert openai_apis.requests == []
    await nothing_held_or_written(pool, account.user_id)


async def test_the_providers_own_refusal_passes_through_and_costs_nothing(
    pool, openai_apis, start_service, make_account
):
    openai_apis.status = 400
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    with pytest.raises(openai.BadRequestError, match="openai says 400"):
        service.client(account.key).embeddings.create(model=MODEL, input=TEXT)

    (row,) = await usage_rows(pool, account.user_id)
    assert (row["api"], row["success"], row["status_code"], row["credits_used"]) == ("embeddings", False, 400, 0)
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "released"


BAD_BODIES: dict[str, dict[str, Any]] = {
    "no input": {"model": MODEL},
    "empty list": {"model": MODEL, "input": []},
    "empty string": {"model": MODEL, "input": ""},
    "an empty string among others": {"model": MODEL, "input": ["a", ""]},
    "a float token": {"model": MODEL, "input": [1, 2.5]},
    "a boolean token": {"model": MODEL, "input": [1, True]},
    "a negative token": {"model": MODEL, "input": [[1], [-1]]},
    "an empty token array": {"model": MODEL, "input": [[1], []]},
    "strings and tokens mixed": {"model": MODEL, "input": ["a", [1]]},
    "an object": {"model": MODEL, "input": {"text": "a"}},
    "2049 inputs": {"model": MODEL, "input": ["a"] * 2049},
    "stream": {"model": MODEL, "input": "a", "stream": True},
    "an unknown field": {"model": MODEL, "input": "a", "truncate": "END"},
    "a bad encoding": {"model": MODEL, "input": "a", "encoding_format": "hex"},
    "zero dimensions": {"model": MODEL, "input": "a", "dimensions": 0},
    "no model": {"input": "a"},
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_bad_body_is_a_400_in_openais_shape_and_holds_nothing(
    pool, openai_apis, start_service, make_account, body
):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    response = httpx.post(
        f"{service.url}/v1/embeddings",
        headers={"Authorization": f"Bearer {account.key}"},
        json=body,
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["code"]
    assert openai_apis.requests == []
    await nothing_held_or_written(pool, account.user_id)


async def test_byok_embeddings_use_the_users_own_key(pool, openai_apis, start_service, make_account):
    openai_apis.embedding_tokens = 600
    await add_price(pool)
    service = start_service({"openai": openai_apis}, byok_fee_ratio=Decimal("0.1"))
    account = await make_account(credits_="10")
    added = service.post("/v1/provider-keys", account.key, {"provider": "openai", "api_key": "sk-own-key-0123456789"})

    raw = service.client(account.key).embeddings.with_raw_response.create(model=MODEL, input=TEXT)

    assert added.status_code == 201
    assert openai_apis.requests[0]["headers"]["authorization"] == "Bearer sk-own-key-0123456789"
    fee = (credits(600) * Decimal("0.1")).quantize(Decimal("0.000001"))
    assert Decimal(raw.headers["x-credits-charged"]) == fee
    (row,) = await usage_rows(pool, account.user_id)
    assert row["is_byok"] and row["api"] == "embeddings" and row["credits_used"] == fee


# --- properties of the parsing and the usage reading ---------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**32) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=40,
)
INPUTS = (
    JSON
    | st.text(max_size=200)
    | st.lists(st.text(max_size=50), max_size=8)
    | st.lists(st.integers(0, 100_000), max_size=50)
    | st.lists(st.lists(st.integers(0, 100_000), max_size=20), max_size=8)
)
PRICE = ModelPrice("openai", MODEL, INPUT_USD_PER_MTOK, Decimal(0), context_window=100, max_output_tokens=1)
ROUTE = Route("openai", ProviderConfig(base_url="http://127.0.0.1:9/v1"), PRICE, None)


@settings(max_examples=300, deadline=None)
@given(given=INPUTS)
def test_any_input_is_refused_cleanly_or_bounded_above_its_floor(given):
    try:
        call = parse_embeddings_request({"model": MODEL, "input": given})
    except InvalidRequest as refused:
        assert refused.http_status == 400 and refused.param == "input"
        return
    bounds = call.bounds(ROUTE, 0, "")
    assert call.prompt_upper_bound() >= bounds.prompt_floor >= 0
    assert bounds.prompt_floor <= bounds.prompt_estimate <= call.prompt_upper_bound()
    assert call.most_completion_tokens(ROUTE) == 0


@settings(max_examples=300, deadline=None)
@given(given=INPUTS, reported=JSON)
def test_any_usage_is_charged_within_the_bounds_and_the_hold(given, reported):
    try:
        call = parse_embeddings_request({"model": MODEL, "input": given})
    except InvalidRequest:
        return
    bounds = call.bounds(ROUTE, 0, "")
    counted = bounded_usage(reported, call.usage_fields(reported), bounds)
    assert min(bounds.prompt_floor, bounds.prompt_ceiling) <= counted.counts.input <= bounds.prompt_ceiling
    assert counted.counts.output == 0
    held = most_cost(PRICE, min(call.prompt_upper_bound(), call.prompts * PRICE.context_window), 0)
    assert counted.counts.input * INPUT_USD_PER_MTOK / Decimal(1_000_000) <= held

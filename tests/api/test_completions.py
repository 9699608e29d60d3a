"""POST /v1/completions (legacy) through the real openai SDK: held for every candidate, forwarded,
streamed or not, charged its usage."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.gateway.adapters.completions import parse_completions_request
from ledger.gateway.pricing import ModelPrice, TokenCounts, cost, most_cost
from ledger.gateway.routing import Route
from ledger.gateway.tokens import bounded_usage, completion_tokens_estimate
from ledger.settings import ProviderConfig
from tests.api.conftest import HTTP_TIMEOUT
from tests.api.ledger_state import usage_rows, wait_for_usage_row

MODEL = "instruct-test"
INPUT_USD, OUTPUT_USD = Decimal("10"), Decimal("20")  # per 1M tokens
USD_PER_CREDIT = Decimal("0.10")  # the settings' default; the balanced level's multiplier is 1.0
TEXT = "complete these words " * 60  # 180 words, 1,260 bytes
REPLY = "Hello from the fake completions."


async def add_price(pool) -> None:
    await pool.execute(
        "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,"
        " max_output_tokens) VALUES ('openai', $1, $2, $3, 4096, 1000)",
        MODEL,
        INPUT_USD,
        OUTPUT_USD,
    )


def credits(prompt_tokens: int, completion_tokens: int) -> Decimal:
    usd = (prompt_tokens * INPUT_USD + completion_tokens * OUTPUT_USD) / Decimal(1_000_000)
    return (usd / USD_PER_CREDIT).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


async def nothing_held_or_written(pool, user_id) -> None:
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE user_id = $1", user_id) == 0
    assert await usage_rows(pool, user_id) == []


@pytest.mark.parametrize(
    ("prompt", "choices"),
    [(TEXT, 1), ([TEXT, "a second prompt"], 2), ([7] * 300, 1), ([[7] * 290, [8] * 10], 2)],
    ids=["string", "strings", "tokens", "token arrays"],
)
async def test_a_completion_is_charged_exactly_its_usage(
    pool, openai_apis, start_service, make_account, prompt, choices
):
    openai_apis.completion_usage = (300, 5 * choices)  # a choice per prompt, 5 words (a token each)
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    raw = service.client(account.key).completions.with_raw_response.create(model=MODEL, prompt=prompt)
    completion = raw.parse()

    expected = credits(300, 5 * choices)
    assert expected == (Decimal("0.031") if choices == 1 else Decimal("0.032"))
    assert [choice.text for choice in completion.choices] == [REPLY] * choices
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (300, 5 * choices)
    assert Decimal(completion.usage.model_extra["cost"]) == expected
    assert Decimal(raw.headers["x-credits-charged"]) == expected
    sent = openai_apis.requests[0]
    assert sent["path"] == "/v1/completions"
    assert sent["body"] == {"model": MODEL, "prompt": prompt, "max_tokens": 16}, "OpenAI's default max_tokens, sent"
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["api"], row["provider"], row["success"], row["status_code"]) == ("completions", "openai", True, 200)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (300, 5 * choices)
    assert row["credits_used"] == expected and row["usage_anomaly"] is None
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10 - expected


async def test_the_hold_covers_every_candidate_of_best_of(pool, openai_apis, start_service, make_account):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    prompt = [1] * 1000  # a token array's bound is exactly its length
    # best_of=3 x max_tokens=100 output tokens: 1000 x $10 + 300 x $20 per 1M = 0.16 credits
    poorer = await make_account(credits_=str(credits(1000, 300) - Decimal("0.000001")))
    richer = await make_account(credits_=str(credits(1000, 300)))

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(poorer.key).completions.create(model=MODEL, prompt=prompt, max_tokens=100, n=2, best_of=3)
    service.client(richer.key).completions.create(model=MODEL, prompt=prompt, max_tokens=100, n=2, best_of=3)

    assert raised.value.status_code == 402 and raised.value.code == "insufficient_quota"
    assert "0.160000 credits" in raised.value.message
    assert len(openai_apis.requests) == 1 and openai_apis.requests[0]["body"]["best_of"] == 3
    await nothing_held_or_written(pool, poorer.user_id)


async def test_with_no_max_tokens_the_hold_is_for_openais_default_16(pool, openai_apis, start_service, make_account):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    # 1000 prompt tokens and 16 output tokens; the model's own limit (1000) would be 0.3 credits
    account = await make_account(credits_=str(credits(1000, 16)))

    service.client(account.key).completions.create(model=MODEL, prompt=[1] * 1000, n=1)
    # the same tokens as two prompts of 500 are two completions of 16
    twice = await make_account(credits_=str(credits(1000, 16)))
    with pytest.raises(openai.APIStatusError) as raised:
        service.client(twice.key).completions.create(model=MODEL, prompt=[[1] * 500, [2] * 500])

    assert openai_apis.requests[0]["body"]["max_tokens"] == 16
    assert raised.value.status_code == 402 and len(openai_apis.requests) == 1


async def test_a_stream_passes_through_and_ends_with_the_charged_usage(pool, openai_apis, start_service, make_account):
    openai_apis.completion_usage = (300, 5)
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    chunks = list(
        service.client(account.key).completions.create(
            model=MODEL, prompt=TEXT, stream=True, stream_options={"include_usage": True}, max_tokens=50
        )
    )

    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == REPLY
    assert all(chunk.usage is None for chunk in chunks[:-1])
    final = chunks[-1]
    assert final.choices == [] and (final.usage.prompt_tokens, final.usage.completion_tokens) == (300, 5)
    assert Decimal(final.usage.model_extra["cost"]) == credits(300, 5)
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["api"] == "completions" and row["success"] and row["credits_used"] == credits(300, 5)
    assert openai_apis.requests[0]["body"]["stream_options"] == {"include_usage": True}
    assert openai_apis.requests[0]["body"]["max_tokens"] == 50


async def test_a_stream_without_include_usage_is_still_billed(pool, openai_apis, start_service, make_account):
    openai_apis.completion_usage = (300, 5)
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    chunks = list(service.client(account.key).completions.create(model=MODEL, prompt=TEXT, stream=True))

    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert openai_apis.requests[0]["body"]["stream_options"] == {"include_usage": True}
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["credits_used"] == credits(300, 5)


async def test_a_stream_cut_by_the_client_is_billed_for_what_was_generated(
    pool, openai_apis, start_service, make_account
):
    openai_apis.words = [f"word{i}" for i in range(200)]
    openai_apis.chunk_delay = 0.02
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    stream = service.client(account.key).completions.create(
        model=MODEL, prompt=TEXT, stream=True, max_tokens=1000, stream_options={"include_usage": True}
    )
    received = [next(stream).choices[0].text for _ in range(3)]
    stream.close()

    row = await wait_for_usage_row(pool, account.user_id)
    assert received == ["word0", " word1", " word2"]
    assert not row["success"] and row["status_code"] == 499 and row["api"] == "completions"
    full = completion_tokens_estimate(" ".join(openai_apis.words))
    assert 3 <= row["completion_tokens"] < full, "billed for what was generated, not for the whole reply"
    assert row["credits_used"] == credits(row["prompt_tokens"], row["completion_tokens"]) > 0
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "settled"


async def test_an_echoed_prompt_is_not_counted_as_generated(pool, openai_apis, start_service, make_account):
    """The floor under completion_tokens is the words generated: with echo, the answer's text
    starts with the prompt's 180 words, which the model did not generate."""
    openai_apis.completion_usage = (300, 5)
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    completion = service.client(account.key).completions.create(model=MODEL, prompt=TEXT, echo=True, logprobs=2)

    assert completion.choices[0].text == TEXT + REPLY
    (row,) = await usage_rows(pool, account.user_id)
    assert row["completion_tokens"] == 5 and row["usage_anomaly"] is None


async def test_not_enough_credits_is_a_402_before_any_upstream_call(pool, openai_apis, start_service, make_account):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="0.000001")

    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as raised:
            service.client(account.key).completions.create(model=MODEL, prompt=TEXT, stream=stream)
        assert raised.value.status_code == 402
        assert raised.value.code == "insufficient_quota" and raised.value.type == "insufficient_quota"
    assert openai_apis.requests == []
    await nothing_held_or_written(pool, account.user_id)


BAD_BODIES: dict[str, dict[str, Any]] = {
    "no prompt": {"model": MODEL},
    "empty list": {"model": MODEL, "prompt": []},
    "a float token": {"model": MODEL, "prompt": [1, 2.5]},
    "an empty token array": {"model": MODEL, "prompt": [[1], []]},
    "strings and tokens mixed": {"model": MODEL, "prompt": ["a", [1]]},
    "2049 prompts": {"model": MODEL, "prompt": ["a"] * 2049},
    "best_of below n": {"model": MODEL, "prompt": "a", "n": 3, "best_of": 2},
    "best_of above 20": {"model": MODEL, "prompt": "a", "best_of": 21},
    "best_of with stream": {"model": MODEL, "prompt": "a", "best_of": 2, "stream": True},
    "logprobs above 5": {"model": MODEL, "prompt": "a", "logprobs": 6},
    "a negative max_tokens": {"model": MODEL, "prompt": "a", "max_tokens": -1},
    "n zero": {"model": MODEL, "prompt": "a", "n": 0},
    "a string stream": {"model": MODEL, "prompt": "a", "stream": "yes"},
    "a non-string suffix": {"model": MODEL, "prompt": "a", "suffix": 3},
    "an unknown stream option": {"model": MODEL, "prompt": "a", "stream": True, "stream_options": {"x": 1}},
    "an unknown field": {"model": MODEL, "prompt": "a", "tools": []},
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_bad_body_is_a_400_in_openais_shape_and_holds_nothing(
    pool, openai_apis, start_service, make_account, body
):
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    response = httpx.post(
        f"{service.url}/v1/completions",
        headers={"Authorization": f"Bearer {account.key}"},
        json=body,
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["code"]
    assert openai_apis.requests == []
    await nothing_held_or_written(pool, account.user_id)


async def test_byok_completions_use_the_users_own_key(pool, openai_apis, start_service, make_account):
    openai_apis.completion_usage = (300, 5)
    await add_price(pool)
    service = start_service({"openai": openai_apis})  # no BYOK fee: a user with no credits is served
    account = await make_account(credits_="0")
    added = service.post("/v1/provider-keys", account.key, {"provider": "openai", "api_key": "sk-own-key-0123456789"})

    chunks = list(service.client(account.key).completions.create(model=MODEL, prompt=TEXT, stream=True))

    assert added.status_code == 201 and "".join(c.choices[0].text for c in chunks) == REPLY
    assert openai_apis.requests[0]["headers"]["authorization"] == "Bearer sk-own-key-0123456789"
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["is_byok"] and row["api"] == "completions" and row["credits_used"] == 0
    assert row["cost_usd"] == credits(300, 5) * USD_PER_CREDIT


# --- properties of the parsing and the usage reading ---------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**32) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=40,
)
PROMPTS = (
    JSON
    | st.text(max_size=200)
    | st.lists(st.text(max_size=50), max_size=8)
    | st.lists(st.integers(0, 100_000), max_size=50)
    | st.lists(st.lists(st.integers(0, 100_000), max_size=20), max_size=8)
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "max_tokens": st.integers(-1, 2000) | st.none(),
        "n": st.integers(0, 4),
        "best_of": st.integers(0, 6),
        "echo": st.booleans(),
        "suffix": st.text(max_size=20),
        "stream": st.booleans(),
    },
)
PRICE = ModelPrice("openai", MODEL, INPUT_USD, OUTPUT_USD, context_window=100, max_output_tokens=500)
ROUTE = Route("openai", ProviderConfig(base_url="http://127.0.0.1:9/v1"), PRICE, None)


def parsed(prompt: Any, options: dict[str, Any]):
    try:
        return parse_completions_request({"model": MODEL, "prompt": prompt, **options})
    except InvalidRequest as refused:
        assert refused.http_status == 400 and refused.param in ("prompt", "n", "best_of", "max_tokens")
        return None


@settings(max_examples=300, deadline=None)
@given(prompt=PROMPTS, options=OPTIONS)
def test_any_prompt_is_refused_cleanly_or_bounded_above_its_floor(prompt, options):
    call = parsed(prompt, options)
    if call is None:
        return
    bounds = call.bounds(ROUTE, 0, "")
    assert call.prompt_upper_bound() >= bounds.prompt_floor >= 0
    assert bounds.prompt_floor <= bounds.prompt_estimate
    assert call.most_completion_tokens(ROUTE) == len(call.inputs) * max(
        options.get("n") or 1, options.get("best_of") or 1
    ) * min(500, 16 if options.get("max_tokens") is None else options["max_tokens"])


@settings(max_examples=300, deadline=None)
@given(prompt=PROMPTS, options=OPTIONS, reported=JSON, text=st.text(max_size=100))
def test_any_usage_is_charged_within_the_bounds_and_the_hold(prompt, options, reported, text):
    call = parsed(prompt, options)
    if call is None:
        return
    floor = len(text.split())
    bounds = call.bounds(ROUTE, floor, text)
    counted = bounded_usage(reported, call.usage_fields(reported), bounds)
    assert min(bounds.prompt_floor, bounds.prompt_ceiling) <= counted.counts.input <= bounds.prompt_ceiling
    assert min(floor, bounds.completion_ceiling) <= counted.counts.output <= bounds.completion_ceiling
    most_prompt = min(call.prompt_upper_bound(), call.prompts * PRICE.context_window)
    held = most_cost(PRICE, most_prompt, call.most_completion_tokens(ROUTE))
    assert cost(PRICE, counted.counts) <= held


async def test_an_upstream_that_drops_mid_stream_is_billed_and_the_client_told(
    pool, openai_apis, start_service, make_account
):
    openai_apis.words = ["one", "two", "three", "four", "five", "six"]
    openai_apis.drop_after = 3
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    received = []
    with pytest.raises(openai.APIError, match="stream broke"):
        for chunk in service.client(account.key).completions.create(model=MODEL, prompt=TEXT, stream=True):
            received.append(chunk.choices[0].text)

    assert "".join(received) == "one two three"
    row = await wait_for_usage_row(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 502 and "upstream stream broke" in row["error_message"]
    assert row["completion_tokens"] == completion_tokens_estimate("one two three")
    assert row["credits_used"] == credits(row["prompt_tokens"], row["completion_tokens"]) > 0


async def test_the_providers_own_refusal_passes_through_and_costs_nothing(
    pool, openai_apis, start_service, make_account
):
    openai_apis.status = 400
    await add_price(pool)
    service = start_service({"openai": openai_apis})
    account = await make_account(credits_="10")

    with pytest.raises(openai.BadRequestError, match="openai says 400"):
        service.client(account.key).completions.create(model=MODEL, prompt=TEXT)

    (row,) = await usage_rows(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 400 and row["credits_used"] == 0
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "released"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10


CHOICE = st.fixed_dictionaries(
    {}, optional={"text": JSON, "index": JSON, "logprobs": JSON, "finish_reason": JSON, "extra": JSON}
)
EVENT = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"object": st.just("text_completion")},
        optional={"choices": st.lists(CHOICE, max_size=3) | JSON, "usage": JSON, "id": JSON},
    ),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENT, max_size=6), echo=st.booleans())
def test_any_stream_is_forwarded_as_chunks_the_sdk_reads(events, echo):
    """Whatever JSON events come, the meter never raises, forwards only chunks whose choices have
    text (or none), never forwards the upstream's usage, and floors what it forwarded."""
    call = parse_completions_request({"model": MODEL, "prompt": TEXT, "stream": True, "echo": echo})
    meter = call.stream_meter()
    forwarded = []
    for event in events:
        out = meter.event([f"data: {json.dumps(event)}"])
        if out is not None:
            assert out.startswith(b"data: ") and out.endswith(b"\n\n")
            forwarded.append(json.loads(out[6:]))
    for chunk in forwarded:
        assert chunk.get("usage") is None
        assert all(isinstance(choice.get("text"), str | None) for choice in chunk.get("choices") or [])
    by_choice: dict[int, str] = {}
    for chunk in forwarded:
        for choice in chunk.get("choices") or []:
            index = choice.get("index") if isinstance(choice.get("index"), int) else 0
            by_choice[index] = by_choice.get(index, "") + (choice.get("text") or "")
    assert meter.words <= sum(len(text.split()) for text in by_choice.values())
    assert meter.closing_events(TokenCounts(input=1, output=2), "0.5", False) == b"data: [DONE]\n\n"

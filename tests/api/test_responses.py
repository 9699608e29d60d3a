"""POST /v1/responses through the real openai SDK: held, routed, settled at each token type's price."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.gateway.tokens import completion_tokens_estimate
from tests.api.ledger_state import assert_reconciled, hold_of, usage_rows
from tests.api.test_metering_bounds import json_values
from tests.fake_responses import FakeResponses, Usage

MODEL = "responses-test-model"
# USD per 1M tokens: input, input read from the cache, output (reasoning unpriced: as output)
INPUT, CACHE_READ, OUTPUT = Decimal("1.25"), Decimal("0.125"), Decimal("10")
MAX_OUTPUT, CONTEXT = 128_000, 400_000
# long enough in bytes that the fake's reported input tokens are within the request's bound
PROMPT = "Say hello. " + "0123456789" * 150
USAGE = Usage(input=1234, cached=1024, output=777, reasoning=512)
BYOK_KEY = "sk-users-own-openai-key-0123456789"


def credits_for(usage: Usage) -> Decimal:
    """The charge at $0.10 a credit, balanced (x1.0): cached input at its own price, the rest of the
    input at the input price, every output token (reasoning ones included) at the output price."""
    usd = ((usage.input - usage.cached) * INPUT + usage.cached * CACHE_READ + usage.output * OUTPUT) / 1_000_000
    return (usd / Decimal("0.10")).quantize(Decimal("0.000001"))


@pytest.fixture
async def fake(pool):
    await pool.execute(
        """INSERT INTO model_prices (provider, model, input_usd_per_mtok, cache_read_usd_per_mtok,
                                     output_usd_per_mtok, context_window, max_output_tokens)
           VALUES ('openai', $1, $2, $3, $4, $5, $6)""",
        MODEL,
        INPUT,
        CACHE_READ,
        OUTPUT,
        CONTEXT,
        MAX_OUTPUT,
    )
    fake = FakeResponses("openai", usage=Usage(**vars(USAGE))).start()
    yield fake
    fake.stop()


async def wait_for_row(pool, user_id, timeout: float = 15.0):
    for _ in range(int(timeout / 0.05)):
        rows = await usage_rows(pool, user_id)
        if rows:
            await asyncio.sleep(0.1)  # a second row would be a bug: give it the chance to show
            (row,) = await usage_rows(pool, user_id)
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("no usage row was written")


def post(service, key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{service.url}/v1/responses", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)


async def assert_charged_row(pool, user_id, charged: Decimal, usage: Usage = USAGE) -> None:
    row = await wait_for_row(pool, user_id)
    assert (row["api"], row["provider"], row["success"], row["status_code"]) == ("responses", "openai", True, 200)
    assert (row["prompt_tokens"], row["cache_read_tokens"]) == (usage.input, usage.cached)
    assert (row["completion_tokens"], row["reasoning_tokens"]) == (usage.output, usage.reasoning)
    assert row["credits_used"] == charged and row["usage_anomaly"] is None
    assert (await hold_of(pool, user_id))["status"] == "settled"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user_id) == 100 - charged
    await assert_reconciled(pool)


async def test_a_response_is_charged_exactly_at_each_token_types_price(pool, fake, start_service, make_account):
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    raw = service.client(account.key).responses.with_raw_response.create(model=MODEL, input=PROMPT)
    response = raw.parse()

    charged = credits_for(USAGE)
    assert charged == Decimal("0.081605")
    assert response.output_text == "Hello from the fake responses."
    usage = response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (1234, 1024)
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (777, 512)
    assert usage.total_tokens == 1234 + 777
    assert Decimal(usage.model_extra["cost"]) == charged == Decimal(raw.headers["x-credits-charged"])
    (sent,) = fake.requests
    assert sent["body"]["max_output_tokens"] == MAX_OUTPUT, "the hold's cap, the model's limit when none was sent"
    assert sent["body"]["input"] == PROMPT and sent["headers"]["authorization"] == "Bearer sk-platform-openai"
    await assert_charged_row(pool, account.user_id, charged)


async def test_a_streamed_response_forwards_every_event_and_ends_with_the_usage_charged(
    pool, fake, start_service, make_account
):
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    events = list(service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True))

    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the reasoning item
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from the fake responses."
    )
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (1234, 1024)
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (777, 512)
    assert Decimal(usage.model_extra["cost"]) == credits_for(USAGE)
    assert fake.requests[0]["body"]["stream"] is True
    await assert_charged_row(pool, account.user_id, credits_for(USAGE))


async def test_the_sdks_stream_helper_reads_the_metered_stream(pool, fake, start_service, make_account):
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    with service.client(account.key).responses.stream(model=MODEL, input=PROMPT, max_output_tokens=1000) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text == "Hello from the fake responses."
    assert Decimal(final.usage.model_extra["cost"]) == credits_for(USAGE)
    assert fake.requests[0]["body"]["max_output_tokens"] == 1000
    await assert_charged_row(pool, account.user_id, credits_for(USAGE))


async def test_an_incomplete_response_is_charged_too(pool, fake, start_service, make_account):
    fake.terminal = "response.incomplete"
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    events = list(service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True))

    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert Decimal(events[-1].response.usage.model_extra["cost"]) == credits_for(USAGE)
    await assert_charged_row(pool, account.user_id, credits_for(USAGE))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_function_call_is_metered_by_its_name_and_arguments(pool, fake, start_service, make_account, stream):
    arguments = json.dumps({"location": "Paris, France", "unit": "celsius", "days": [1, 2, 3]})
    fake.tool_call = ("get_weather", arguments)
    fake.usage = None  # nothing reported: the call's text is what the completion is estimated from
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}

    client = service.client(account.key)
    if stream:
        with client.responses.stream(model=MODEL, input=PROMPT, tools=[tool]) as events:
            final = events.get_final_response()
    else:
        final = client.responses.create(model=MODEL, input=PROMPT, tools=[tool])

    (call,) = final.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", arguments)
    assert fake.requests[0]["body"]["tools"] == [tool]
    row = await wait_for_row(pool, account.user_id)
    assert row["completion_tokens"] == completion_tokens_estimate("get_weather " + arguments)
    assert row["success"] and row["reported_usage"] is None and row["api"] == "responses"


async def test_not_enough_credits_is_a_402_in_openais_shape_before_any_upstream_call(
    pool, fake, start_service, make_account
):
    service = start_service({"openai": fake})
    account = await make_account(credits_="1")  # 128,000 output tokens at $10 per 1M can cost 12.8

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True)

    error = raised.value
    assert error.status_code == 402
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert set(error.body) == {"message", "type", "param", "code"}
    assert fake.requests == []
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    # a cap that fits the balance is served
    service.client(account.key).responses.create(model=MODEL, input=PROMPT, max_output_tokens=800)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"tools": [{"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": ["vs"]}]},
            "tools[1].type",
        ),
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
        ({"tools": [{"type": "computer_use_preview", "display_width": 1, "display_height": 1}]}, "tools[0].type"),
        ({"tools": [{"type": "mcp", "server_label": "x", "server_url": "https://x"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_123"}}, "prompt"),
        ({"service_tier": "priority"}, "service_tier"),
        ({"include": ["file_search_call.results"]}, "include[0]"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
async def test_what_cannot_be_metered_is_refused_and_nothing_is_held(
    pool, fake, start_service, make_account, extra, param
):
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    response = post(service, account.key, {"model": MODEL, "input": PROMPT, **extra})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert fake.requests == []
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert await pool.fetchval("SELECT count(*) FROM llm_usage_log") == 0


@pytest.mark.parametrize(
    ("input_", "code"),
    [
        ([{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}], "unsupported_content_part"),
        ([{"type": "computer_call_output", "call_id": "c", "output": {}}], "unsupported_input_item"),
        (
            [{"role": "user", "content": [{"type": "input_image", "image_url": "x", "detail": "huge"}]}],
            "unsupported_content_part",
        ),
        (42, "invalid_input"),
    ],
)
async def test_input_that_cannot_be_bounded_is_a_400(pool, fake, start_service, make_account, input_, code):
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    response = post(service, account.key, {"model": MODEL, "input": input_})

    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert fake.requests == []
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0


async def test_stored_context_is_held_at_the_models_context_window(pool, fake, start_service, make_account):
    service = start_service({"openai": fake})
    # enough for this prompt and 800 output tokens, not for a prompt of the whole context window
    account = await make_account(credits_="1")
    client = service.client(account.key)

    client.responses.create(model=MODEL, input=PROMPT, max_output_tokens=800)
    with pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model=MODEL, input="And then?", previous_response_id="resp_1", max_output_tokens=800)

    assert raised.value.status_code == 402 and len(fake.requests) == 1
    hold = (CONTEXT * INPUT + 800 * OUTPUT) / 1_000_000 / Decimal("0.10")
    assert f"can cost up to {hold.quantize(Decimal('0.000001'))} credits" in raised.value.message


@pytest.mark.parametrize(
    "stored_item",
    [
        {"type": "reasoning", "id": "rs_1", "summary": []},  # store: true, passed back by its id only
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thought."}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ""},
        {"type": "item_reference", "id": "msg_1"},
    ],
)
async def test_input_that_stands_for_stored_content_is_held_at_the_context_window(
    pool, fake, start_service, make_account, stored_item
):
    """An agent's tool loop with store: true passes its reasoning items back by id: the provider
    reads the stored reasoning, which the request does not carry (5,200 input tokens reported where
    the request's own bytes bounded 1,421)."""
    service = start_service({"openai": fake})
    account = await make_account(credits_="1")  # enough for the text, not for the context window
    client = service.client(account.key)
    loop_input = [
        {"role": "user", "content": "What is the weather?"},
        stored_item,
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]

    with pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model=MODEL, input=loop_input, max_output_tokens=800)

    assert raised.value.status_code == 402 and fake.requests == []
    hold = (CONTEXT * INPUT + 800 * OUTPUT) / 1_000_000 / Decimal("0.10")
    assert f"can cost up to {hold.quantize(Decimal('0.000001'))} credits" in raised.value.message


async def test_a_reasoning_item_that_carries_its_encrypted_content_is_bounded_by_its_bytes(
    pool, fake, start_service, make_account
):
    service = start_service({"openai": fake})
    account = await make_account(credits_="1")
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA" + "x" * 3000}

    response = service.client(account.key).responses.create(
        model=MODEL, input=[{"role": "user", "content": PROMPT}, reasoning], max_output_tokens=800
    )

    assert response.usage is not None and len(fake.requests) == 1


async def test_a_client_that_stops_reading_is_billed_for_what_was_generated(pool, fake, start_service, make_account):
    fake.words = [f"word{i}" for i in range(300)]
    fake.chunk_delay = 0.02
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    stream = service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True)
    received = []
    for event in stream:
        if event.type == "response.output_text.delta":
            received.append(event.delta)
        if len(received) == 3:
            break
    stream.close()

    row = await wait_for_row(pool, account.user_id)
    assert received == ["word0", " word1", " word2"]
    assert (row["api"], row["success"], row["status_code"]) == ("responses", False, 499)
    assert 3 <= row["completion_tokens"] < 300, "billed for what was generated, not the whole reply"
    assert row["credits_used"] > 0
    hold = await hold_of(pool, account.user_id)
    assert hold["status"] == "settled" and hold["charged"] == row["credits_used"] <= hold["amount"]
    await assert_reconciled(pool)


async def test_an_upstream_that_drops_mid_stream_ends_with_an_error_event_and_is_billed(
    pool, fake, start_service, make_account
):
    fake.drop_after = 3
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    events = list(service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True))

    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from the"
    error = events[-1]
    assert (error.type, error.code) == ("error", "upstream_stream_broken")
    assert error.sequence_number == events[-2].sequence_number + 1
    row = await wait_for_row(pool, account.user_id)
    assert not row["success"] and "upstream stream broke" in row["error_message"]
    assert row["completion_tokens"] >= 3 and row["credits_used"] > 0
    await assert_reconciled(pool)


async def test_a_stream_that_ends_without_its_final_event_is_billed_but_logged_as_failed(
    pool, fake, start_service, make_account
):
    fake.terminal = ""
    service = start_service({"openai": fake})
    account = await make_account(credits_="100")

    events = list(service.client(account.key).responses.create(model=MODEL, input=PROMPT, stream=True))

    assert (events[-1].type, events[-1].code) == ("error", "upstream_stream_incomplete")
    row = await wait_for_row(pool, account.user_id)
    assert (row["success"], row["status_code"]) == (False, 502)
    assert row["error_message"] == "the provider's stream ended before its final event"
    assert row["completion_tokens"] >= 5 and row["credits_used"] > 0
    await assert_reconciled(pool)


async def test_byok_through_the_responses_api(pool, fake, start_service, make_account):
    service = start_service({"openai": fake})
    account = await make_account(credits_="0")  # no fee: a user with no credits is served by their own key

    added = httpx.post(
        f"{service.url}/v1/provider-keys",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"provider": "openai", "api_key": BYOK_KEY},
    )
    raw = service.client(account.key).responses.with_raw_response.create(model=MODEL, input=PROMPT)

    assert added.status_code == 201
    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {BYOK_KEY}"
    assert raw.parse().output_text == "Hello from the fake responses."
    assert Decimal(raw.headers["x-credits-charged"]) == 0
    row = await wait_for_row(pool, account.user_id)
    assert row["is_byok"] and row["success"] and row["api"] == "responses"
    assert row["cost_usd"] == credits_for(USAGE) * Decimal("0.10")


reported_usages = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "input_tokens": st.one_of(json_values, st.integers(-5, 10**12)),
            "output_tokens": st.one_of(json_values, st.integers(-5, 10**12)),
            "input_tokens_details": st.one_of(
                json_values, st.fixed_dictionaries({"cached_tokens": st.one_of(json_values, st.integers(-5, 10**12))})
            ),
            "output_tokens_details": st.one_of(
                json_values,
                st.fixed_dictionaries({"reasoning_tokens": st.one_of(json_values, st.integers(-5, 10**12))}),
            ),
        },
    ),
)


async def test_for_any_reported_usage_the_counts_are_within_bounds_and_the_charge_within_the_hold(
    pool, fake, start_service, make_account
):
    service = start_service({"openai": fake})
    account = await make_account(credits_="1000")
    answers: list[tuple[str, dict]] = []
    cap = 50

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(reported_usages, st.booleans())
    def one_request(usage, stream):
        fake.usage_json = json.dumps(usage)
        response = post(
            service, account.key, {"model": MODEL, "input": PROMPT, "max_output_tokens": cap, "stream": stream}
        )
        assert response.status_code == 200
        if stream:
            last = response.text.strip().split("\n\n")[-1]
            assert last.startswith("event: response.completed\ndata: ")
            charged = json.loads(last.split("data: ", 1)[1])["response"]["usage"]
        else:
            charged = response.json()["usage"]
        answers.append((response.headers["x-request-id"], charged))

    one_request()
    assert answers

    for request_id, charged in answers:
        (row,) = await pool.fetch("SELECT * FROM llm_usage_log WHERE request_id = $1", request_id)
        hold = await pool.fetchrow("SELECT * FROM credit_holds WHERE request_id = $1", request_id)
        assert hold["status"] == "settled"
        assert 0 <= row["credits_used"] == hold["charged"] == Decimal(charged["cost"]) <= hold["amount"]
        assert 0 <= row["cache_read_tokens"] <= row["prompt_tokens"] <= len(json.dumps(PROMPT).encode()) + 100
        assert 0 <= row["reasoning_tokens"] <= row["completion_tokens"] <= cap
        assert (charged["input_tokens"], charged["output_tokens"]) == (row["prompt_tokens"], row["completion_tokens"])
        assert charged["input_tokens_details"]["cached_tokens"] == row["cache_read_tokens"]
        assert charged["output_tokens_details"]["reasoning_tokens"] == row["reasoning_tokens"]
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    await assert_reconciled(pool)

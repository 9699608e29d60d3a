"""POST /v1/messages and /v1/messages/count_tokens through the real anthropic SDK, against a fake
Anthropic that is a real HTTP server speaking the Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import anthropic
import httpx
import openai
import pytest

from tests.api.conftest import HTTP_TIMEOUT
from tests.api.ledger_state import balance, usage_rows, wait_for_usage_row
from tests.api.test_openapi import validate
from tests.fake_anthropic import SIGNATURE, FakeAnthropic

MODEL = "claude-cache-test"
# long enough in bytes that the fake's 2,800 input tokens (cache included) are within the bound
MESSAGES = [{"role": "user", "content": "Say hello. " + "0123456789" * 400}]
USER_KEY = "sk-ant-users-own-key-0123456789"

# the price row the tests insert, USD per 1M tokens of each type
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, CACHE_WRITE_1H = (
    Decimal("3"),
    Decimal("15"),
    Decimal("0.30"),
    Decimal("3.75"),
    Decimal("6"),
)
USD_PER_CREDIT = Decimal("0.10")  # the settings' default; balanced is x1.0


def credits(uncached: int, read: int, write_5m: int, write_1h: int, output: int) -> Decimal:
    usd = (
        uncached * INPUT + read * CACHE_READ + write_5m * CACHE_WRITE + write_1h * CACHE_WRITE_1H + output * OUTPUT
    ) / Decimal(1_000_000)
    return (usd / USD_PER_CREDIT).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(input_tokens=100, output_tokens=50, cache_read=2000, cache_write_5m=300, cache_write_1h=400)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
async def priced(pool) -> None:
    await pool.execute(
        """INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,
               max_output_tokens, cache_read_usd_per_mtok, cache_write_usd_per_mtok, cache_write_1h_usd_per_mtok)
           VALUES ('anthropic', $1, $2, $3, 200000, 8192, $4, $5, $6)""",
        MODEL,
        INPUT,
        OUTPUT,
        CACHE_READ,
        CACHE_WRITE,
        CACHE_WRITE_1H,
    )


@pytest.fixture
def service(start_service, upstreams, fake, priced):
    return start_service({"anthropic": fake, "openai": upstreams["openai"]})


def client(service, key: str, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=service.url, api_key=key, max_retries=0, timeout=HTTP_TIMEOUT, **kwargs)


def post(service, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{service.url}{path}", json=body, headers=headers, timeout=HTTP_TIMEOUT)


async def nothing_held(pool, user_id) -> bool:
    held = await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", user_id)
    holds = await pool.fetchval("SELECT count(*) FROM credit_holds WHERE user_id = $1", user_id)
    return held == 0 and holds == 0


EXPECTED = credits(100, 2000, 300, 400, 50)


async def assert_charged_row(pool, account, charged: Decimal) -> None:
    assert charged == EXPECTED == Decimal("0.051750")  # (300+600+1125+2400+750) / 1e6 USD / 0.10
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["api"], row["provider"], row["model"], row["success"]) == ("messages", "anthropic", MODEL, True)
    assert row["prompt_tokens"] == 100 + 2000 + 300 + 400, "the input total includes cache reads and writes"
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (2000, 700, 400)
    assert row["completion_tokens"] == 50 and row["credits_used"] == EXPECTED
    assert row["usage_anomaly"] is None
    assert await balance(pool, account.user_id) == 100 - EXPECTED
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0


async def test_a_message_is_charged_each_token_type_at_its_price(pool, fake, service, make_account):
    account = await make_account(credits_="100")

    sdk = client(service, account.key)
    raw = sdk.messages.with_raw_response.create(model=MODEL, max_tokens=1000, messages=MESSAGES)
    message = raw.parse()

    assert message.content[0].text == "Hello from the fake Anthropic."
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (100, 2000, 700)
    assert usage.cache_creation.ephemeral_1h_input_tokens == 400 and usage.output_tokens == 50
    assert Decimal(usage.model_extra["cost"]) == EXPECTED
    assert Decimal(raw.headers["x-credits-charged"]) == EXPECTED
    await assert_charged_row(pool, account, EXPECTED)
    (sent,) = fake.requests
    assert sent["headers"]["x-api-key"] == "sk-platform-anthropic" and "authorization" not in sent["headers"]
    assert sent["headers"]["anthropic-version"] == sdk.default_headers["anthropic-version"], "passed through"
    assert sent["body"]["max_tokens"] == 1000 and sent["body"]["model"] == MODEL


async def test_a_stream_helper_gets_the_charged_usage_in_its_final_message(pool, fake, service, make_account):
    account = await make_account(credits_="100")

    with client(service, account.key).messages.stream(model=MODEL, max_tokens=1000, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Hello from the fake Anthropic."
    assert final.usage.output_tokens == 50 and final.usage.input_tokens == 100
    assert final.usage.cache_read_input_tokens == 2000 and final.usage.cache_creation_input_tokens == 700
    row = await wait_for_usage_row(pool, account.user_id)
    await assert_charged_row(pool, account, row["credits_used"])
    assert fake.requests[0]["body"]["stream"] is True


async def test_a_raw_stream_passes_every_event_and_ends_with_the_charged_usage(pool, fake, service, make_account):
    fake.delta_usage = True  # message_delta repeats the input and cache counts: not counted twice
    account = await make_account(credits_="100")

    events = list(
        client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES, stream=True)
    )

    kinds = [event.type for event in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ], "ping is skipped by the SDK; everything else arrives in Anthropic's order"
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 50 and delta.usage.input_tokens == 100
    assert Decimal(delta.usage.model_extra["cost"]) == EXPECTED
    row = await wait_for_usage_row(pool, account.user_id)
    await assert_charged_row(pool, account, row["credits_used"])


async def test_not_enough_credits_is_a_billing_error_before_any_upstream_call(pool, fake, service, make_account):
    account = await make_account(credits_="0")

    with pytest.raises(anthropic.APIStatusError) as raised:
        client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES)

    assert raised.value.status_code == 402
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "billing_error"
    assert "Insufficient credits" in raised.value.body["error"]["message"]
    assert raised.value.response.headers["request-id"].startswith("req_")
    assert fake.requests == []
    assert await nothing_held(pool, account.user_id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL, "messages": MESSAGES}, "max_tokens"),  # required by Anthropic
        ({"model": MODEL, "max_tokens": 0, "messages": MESSAGES}, "max_tokens"),
        ({"model": MODEL, "max_tokens": True, "messages": MESSAGES}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 10, "messages": []}, "messages"),
        ({"model": MODEL, "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"max_tokens": 10, "messages": MESSAGES}, "model"),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "mcp_servers": []}, "mcp_servers"),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "container": "c"}, "container"),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "speed": "fast"}, "speed"),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "service_tier": "priority"}, "service_tier"),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": MESSAGES,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools[0].type",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": MESSAGES,
                "thinking": {"type": "enabled", "budget_tokens": 10},
            },
            "budget_tokens",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}],
            },
            "content[0]",
        ),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "system": [{"type": "image"}]}, "system[0]"),
        ({"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "stream": "yes"}, "stream"),
    ],
)
async def test_a_bad_body_is_an_invalid_request_error_and_nothing_is_held(
    pool, fake, service, make_account, body, param
):
    account = await make_account(credits_="100")

    response = post(service, "/v1/messages", body, {"x-api-key": account.key})

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert param in error["error"]["message"]
    assert response.headers["request-id"]
    assert fake.requests == []
    assert await nothing_held(pool, account.user_id) and await usage_rows(pool, account.user_id) == []


async def test_a_beta_that_changes_the_price_is_refused_and_a_harmless_one_passed_on(pool, fake, service, make_account):
    account = await make_account(credits_="100")
    body = {"model": MODEL, "max_tokens": 100, "messages": MESSAGES}

    refused = post(service, "/v1/messages", body, {"x-api-key": account.key, "anthropic-beta": "context-1m-2025-08-07"})
    client(service, account.key).messages.create(
        **body, extra_headers={"anthropic-beta": "extended-cache-ttl-2025-04-11", "anthropic-version": "2023-06-01"}
    )

    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert "context-1m" in refused.json()["error"]["message"]
    (sent,) = fake.requests
    assert sent["headers"]["anthropic-beta"] == "extended-cache-ttl-2025-04-11"


async def test_the_key_is_accepted_as_x_api_key_or_bearer(pool, fake, service, make_account, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    account = await make_account(credits_="100")

    by_header = client(service, account.key).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    by_bearer = anthropic.Anthropic(
        base_url=service.url, auth_token=account.key, max_retries=0, timeout=HTTP_TIMEOUT
    ).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    with pytest.raises(anthropic.AuthenticationError) as wrong:
        client(service, "sk-lg-not-a-key").messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    missing = post(service, "/v1/messages", {"model": MODEL}, {})

    assert by_header.content and by_bearer.content
    assert len(await usage_rows(pool, account.user_id)) == 2
    assert wrong.value.status_code == 401 and wrong.value.body["error"]["type"] == "authentication_error"
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert len(fake.requests) == 2


async def test_a_bad_body_with_a_wrong_key_is_told_about_the_key_first(service):
    response = post(service, "/v1/messages", {"model": MODEL}, {"x-api-key": "sk-lg-wrong"})

    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


async def test_each_api_goes_only_to_providers_speaking_it(pool, fake, upstreams, service, make_account):
    account = await make_account(credits_="100")

    with pytest.raises(openai.NotFoundError):
        service.client(account.key).chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client(service, account.key).messages.create(model="gpt-4", max_tokens=100, messages=MESSAGES)

    assert raised.value.body["error"]["type"] == "not_found_error"
    assert fake.requests == [] and upstreams["openai"].requests == []
    assert await nothing_held(pool, account.user_id)


async def test_unknown_paths_and_methods_answer_in_anthropics_shape(service):
    wrong_method = httpx.get(f"{service.url}/v1/messages", timeout=HTTP_TIMEOUT)
    unknown = httpx.post(f"{service.url}/v1/messages/batches", json={}, timeout=HTTP_TIMEOUT)

    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


async def test_a_client_that_stops_reading_mid_stream_is_billed_for_what_was_generated(
    pool, fake, service, make_account
):
    fake.words = [f"word{i}" for i in range(300)]
    fake.chunk_delay = 0.02
    account = await make_account(credits_="100")

    stream = client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES, stream=True)
    received = [next(stream).type for _ in range(4)]
    stream.close()

    row = await wait_for_usage_row(pool, account.user_id)
    assert received == ["message_start", "content_block_start", "content_block_delta", "content_block_delta"]
    assert not row["success"] and row["status_code"] == 499
    # message_start's usage: the input and cache counts are known; the output is what was generated
    assert row["prompt_tokens"] == 2800 and row["cache_read_tokens"] == 2000
    assert 1 <= row["completion_tokens"] < 300
    assert row["credits_used"] == credits(100, 2000, 300, 400, row["completion_tokens"])
    assert await balance(pool, account.user_id) == 100 - row["credits_used"]
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "settled"


async def test_an_error_event_mid_stream_reaches_the_sdk_and_what_was_generated_is_billed(
    pool, fake, service, make_account
):
    fake.error_after = 2
    account = await make_account(credits_="100")

    with pytest.raises(anthropic.APIStatusError) as raised:
        list(client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES, stream=True))

    assert raised.value.body["error"]["type"] == "overloaded_error"
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["prompt_tokens"] == 2800 and row["credits_used"] > 0
    assert not row["success"], "billed, but logged as the failure it was"


async def test_a_stream_that_ends_without_message_stop_is_billed_but_logged_as_failed(
    pool, fake, service, make_account
):
    fake.ends_with_stop = False
    account = await make_account(credits_="100")

    with client(service, account.key).messages.stream(model=MODEL, max_tokens=1000, messages=MESSAGES) as stream:
        final = stream.get_final_message()

    assert final.content[0].text == "Hello from the fake Anthropic."
    row = await wait_for_usage_row(pool, account.user_id)
    assert (row["success"], row["status_code"]) == (False, 502) and row["credits_used"] > 0
    assert row["error_message"] == "the provider's stream ended before message_stop"


async def test_an_upstream_refusal_is_passed_through_in_its_shape_and_nothing_charged(
    pool, fake, service, make_account
):
    fake.status = 400
    account = await make_account(credits_="100")

    with pytest.raises(anthropic.BadRequestError) as raised:
        client(service, account.key).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)

    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert await balance(pool, account.user_id) == 100
    (row,) = await usage_rows(pool, account.user_id)
    assert not row["success"] and row["credits_used"] == 0


async def test_byok_sends_the_users_own_key_upstream_as_x_api_key(pool, fake, start_service, priced, make_account):
    service = start_service({"anthropic": fake}, byok_fee_ratio=Decimal("0.1"))
    account = await make_account(credits_="10")

    added = httpx.post(
        f"{service.url}/v1/provider-keys",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"provider": "anthropic", "api_key": USER_KEY},
        timeout=HTTP_TIMEOUT,
    )
    raw = client(service, account.key).messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MESSAGES)

    assert added.status_code == 201
    assert fake.requests[0]["headers"]["x-api-key"] == USER_KEY
    fee = (EXPECTED * Decimal("0.1")).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert Decimal(raw.headers["x-credits-charged"]) == fee
    (row,) = await usage_rows(pool, account.user_id)
    assert row["is_byok"] and row["credits_used"] == fee


async def test_count_tokens_is_passed_through_free(pool, fake, service, make_account):
    account = await make_account(credits_="0")

    counted = client(service, account.key).messages.count_tokens(model=MODEL, messages=MESSAGES)
    unknown = post(
        service,
        "/v1/messages/count_tokens",
        {"model": "no-such-model", "messages": MESSAGES},
        {"x-api-key": account.key},
    )
    wrong_key = post(service, "/v1/messages/count_tokens", {"model": MODEL, "messages": MESSAGES}, {"x-api-key": "x"})

    assert counted.input_tokens == 42
    sent = fake.requests[0]
    assert sent["path"] == "/v1/messages/count_tokens" and sent["body"]["model"] == MODEL
    assert sent["headers"]["x-api-key"] == "sk-platform-anthropic"
    assert sent["headers"]["anthropic-version"] == anthropic.Anthropic(api_key="x").default_headers["anthropic-version"]
    versionless = post(
        service, "/v1/messages/count_tokens", {"model": MODEL, "messages": MESSAGES}, {"x-api-key": account.key}
    )
    assert versionless.json() == {"input_tokens": 42}
    assert fake.requests[-1]["headers"]["anthropic-version"] == "2023-06-01", "the default when the client sent none"
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    assert wrong_key.status_code == 401 and wrong_key.json()["error"]["type"] == "authentication_error"
    assert await nothing_held(pool, account.user_id) and await usage_rows(pool, account.user_id) == []


async def test_the_answers_fit_the_openapi_document(pool, fake, service, make_account):
    account = await make_account(credits_="100")
    body = {"model": MODEL, "max_tokens": 100, "messages": MESSAGES}
    checks = [
        ("/v1/messages", post(service, "/v1/messages", body, {"x-api-key": account.key})),
        ("/v1/messages", post(service, "/v1/messages", body, {"x-api-key": "sk-lg-wrong"})),
        ("/v1/messages", post(service, "/v1/messages", {**body, "model": "nope"}, {"x-api-key": account.key})),
        ("/v1/messages", post(service, "/v1/messages", {**body, "top_logprobs": 2}, {"x-api-key": account.key})),
        ("/v1/messages/count_tokens", post(service, "/v1/messages/count_tokens", body, {"x-api-key": account.key})),
    ]
    assert [response.status_code for _, response in checks] == [200, 401, 404, 400, 200]
    for path, response in checks:
        validate(path, "post", response)


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather at a place",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


@pytest.mark.parametrize("streamed", [False, True])
async def test_thinking_and_tool_calls_pass_through_and_thinking_is_output(pool, fake, service, make_account, streamed):
    fake.thinking = "Let me look up the weather in Paris."
    fake.tool_call = ("get_weather", {"location": "Paris"})
    fake.thinking_tokens = 30
    account = await make_account(credits_="100")
    body = {
        "model": MODEL,
        "max_tokens": 2000,
        "messages": MESSAGES,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [WEATHER_TOOL],
    }

    sdk = client(service, account.key)
    if streamed:
        with sdk.messages.stream(**body) as stream:
            final = stream.get_final_message()
    else:
        final = sdk.messages.create(**body)

    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking.strip() == fake.thinking and final.content[0].signature == SIGNATURE
    assert (final.content[2].name, final.content[2].input) == ("get_weather", {"location": "Paris"})
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 50 and final.usage.output_tokens_details.thinking_tokens == 30
    row = await wait_for_usage_row(pool, account.user_id)
    assert (row["completion_tokens"], row["reasoning_tokens"]) == (50, 30)
    assert row["credits_used"] == EXPECTED, "thinking tokens are output tokens, at the output price"
    assert fake.requests[0]["body"]["thinking"] == body["thinking"]
    assert fake.requests[0]["body"]["tools"] == [WEATHER_TOOL]


async def test_an_upstream_that_drops_mid_stream_is_billed_and_the_client_told(pool, fake, service, make_account):
    fake.drop_after = 3
    account = await make_account(credits_="100")

    with pytest.raises(anthropic.APIStatusError) as raised:
        list(client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES, stream=True))

    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "api_error"
    assert "billed for what was generated" in raised.value.body["error"]["message"]
    row = await wait_for_usage_row(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 502
    assert row["prompt_tokens"] == 2800 and row["completion_tokens"] >= 3, "at least the words delivered"
    assert row["credits_used"] == credits(100, 2000, 300, 400, row["completion_tokens"])


async def test_an_upstream_that_stalls_mid_stream_is_cut_billed_and_the_client_told(
    pool, fake, upstreams, start_service, priced, make_account
):
    fake.stall_after = 2
    service = start_service({"anthropic": fake}, timeout_s=0.5)
    account = await make_account(credits_="100")

    with pytest.raises(anthropic.APIStatusError) as raised:
        list(client(service, account.key).messages.create(model=MODEL, max_tokens=1000, messages=MESSAGES, stream=True))

    assert "ReadTimeout" in raised.value.body["error"]["message"]
    row = await wait_for_usage_row(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 502 and row["credits_used"] > 0

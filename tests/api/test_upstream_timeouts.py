"""Issue 17, items 1 and 7: a request the provider may be generating is never sent to another
provider nor retried by the SDKs, and is charged its prompt; only a 200/201 in the API's shape is a
completion. Each through the real SDKs (with their default retries) against fakes that count the
requests they receive. The rules are in docs/upstream-timeouts.md."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.gateway.tokens import prompt_tokens_estimate
from tests.api.conftest import HTTP_TIMEOUT
from tests.api.ledger_state import assert_reconciled, balance, usage_rows
from tests.api.test_chat import MESSAGES
from tests.api.test_messages import MESSAGES as CLAUDE_MESSAGES
from tests.api.test_messages import MODEL as CLAUDE_MODEL
from tests.api.test_messages import credits as claude_credits
from tests.api.test_responses import INPUT as RESPONSES_INPUT
from tests.api.test_responses import MODEL as RESPONSES_MODEL
from tests.fake_anthropic import FakeAnthropic
from tests.fake_responses import FakeResponses

GPT4_INPUT = Decimal(30)  # USD per 1M prompt tokens of gpt-4 in the test catalog
USD_PER_CREDIT = Decimal("0.10")


def prompt_credits(tokens: int, usd_per_mtok: Decimal) -> Decimal:
    return (tokens * usd_per_mtok / Decimal(1_000_000) / USD_PER_CREDIT).quantize(Decimal("0.000001"))


def sdk(service, key: str) -> openai.OpenAI:
    """The openai SDK as users run it: its default retries (2) on."""
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key=key, timeout=HTTP_TIMEOUT)


async def test_a_non_streamed_answer_slower_than_the_timeout_is_not_retried_anywhere_and_charged_its_prompt(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].delay = 1.5  # the provider is generating; it answers after the timeout
    service = start_service(upstreams, timeout_s=0.5)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.status_code == 504
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert raised.value.body["code"] == "upstream_timeout" and "prompt was charged" in raised.value.body["message"]
    assert len(upstreams["openai"].requests) == 1, "the SDK did not retry"
    assert len(upstreams["openrouter"].requests) == 0, "no other provider ran it again"
    (row,) = await usage_rows(pool, account.user_id)
    expected = prompt_credits(prompt_tokens_estimate(MESSAGES), GPT4_INPUT)
    assert (row["provider"], row["success"], row["status_code"]) == ("openai", False, 504)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt_tokens_estimate(MESSAGES), 0)
    assert row["credits_used"] == expected > 0
    assert "ReadTimeout after the request was sent" in row["error_message"]
    assert "prompt was charged" in row["error_message"]
    assert Decimal(raised.value.response.headers["x-credits-charged"]) == expected
    assert await balance(pool, account.user_id) == 100 - expected
    await assert_reconciled(pool)


async def test_a_connect_failure_still_falls_over_to_the_next_provider(pool, upstreams, start_service, make_account):
    upstreams["openai"].server.stop()
    service = start_service(upstreams, timeout_s=0.5)
    account = await make_account(credits_="100")

    completion = sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert completion.choices[0].message.content
    assert len(upstreams["openrouter"].requests) == 1
    (row,) = await usage_rows(pool, account.user_id)
    assert row["provider"] == "openrouter" and row["success"]


async def test_a_messages_answer_slower_than_the_timeout_is_a_504_not_retried_and_charged_its_prompt(
    pool, upstreams, start_service, make_account
):
    await pool.execute(
        """INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,
               max_output_tokens) VALUES ('anthropic', $1, 3, 15, 200000, 8192)""",
        CLAUDE_MODEL,
    )
    fake = FakeAnthropic(delay=1.5).start()
    try:
        service = start_service({"anthropic": fake}, timeout_s=0.5)
        account = await make_account(credits_="100")
        client = anthropic.Anthropic(base_url=service.url, api_key=account.key, timeout=HTTP_TIMEOUT)  # 2 retries

        with pytest.raises(anthropic.APIStatusError) as raised:
            client.messages.create(model=CLAUDE_MODEL, max_tokens=1000, messages=CLAUDE_MESSAGES)

        assert raised.value.status_code == 504 and raised.value.response.headers["x-should-retry"] == "false"
        assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "api_error"
        assert len(fake.requests) == 1, "the SDK did not retry"
        (row,) = await usage_rows(pool, account.user_id)
        assert (row["success"], row["status_code"], row["completion_tokens"]) == (False, 504, 0)
        assert row["prompt_tokens"] > 0
        assert row["credits_used"] == claude_credits(row["prompt_tokens"], 0, 0, 0, 0) > 0
    finally:
        fake.stop()


async def test_a_response_slower_than_the_timeout_is_a_504_not_retried_and_charged_its_prompt(
    pool, start_service, make_account
):
    await pool.execute(
        """INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,
               max_output_tokens) VALUES ('openai', $1, $2, 10, 400000, 128000)""",
        RESPONSES_MODEL,
        RESPONSES_INPUT,
    )
    fake = FakeResponses("openai", delay=1.5).start()
    try:
        service = start_service({"openai": fake}, timeout_s=0.5)
        account = await make_account(credits_="100")

        with pytest.raises(openai.APIStatusError) as raised:
            sdk(service, account.key).responses.create(model=RESPONSES_MODEL, input="Say hello.")

        assert raised.value.status_code == 504 and raised.value.response.headers["x-should-retry"] == "false"
        assert len(fake.requests) == 1, "the SDK did not retry"
        (row,) = await usage_rows(pool, account.user_id)
        assert (row["success"], row["status_code"], row["completion_tokens"]) == (False, 504, 0)
        assert row["credits_used"] == prompt_credits(row["prompt_tokens"], RESPONSES_INPUT) > 0
    finally:
        fake.stop()


async def test_a_stream_lives_past_the_answer_timeout_while_its_events_come_within_the_idle_timeout(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].chunk_delay = 0.4  # 5 words: about 2 s in all, never 0.6 s of silence
    service = start_service(upstreams, timeout_s=0.3)
    for provider in service.settings.providers.values():
        provider.stream_idle_timeout_s = 1.0
    account = await make_account(credits_="100")

    chunks = list(sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream."
    (row,) = await usage_rows(pool, account.user_id)
    assert row["success"] and row["provider"] == "openai"


@pytest.mark.parametrize("status", [202, 203, 206])
async def test_a_2xx_other_than_200_is_not_a_completion_and_is_not_charged(
    pool, upstreams, start_service, make_account, status
):
    answer = {"id": "chatcmpl-x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 9}}
    upstreams["openai"].raw_chunks = [json.dumps(answer).encode()]
    upstreams["openai"].raw_status = status
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.status_code == 502 and raised.value.body["code"] == "upstream_invalid_response"
    assert raised.value.response.headers["x-should-retry"] == "false", "the provider took it: not run again"
    assert len(upstreams["openai"].requests) == 1 and len(upstreams["openrouter"].requests) == 0
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 502, 0)
    assert f"HTTP {status}" in row["error_message"]
    assert await balance(pool, account.user_id) == 100


@pytest.mark.parametrize("stream", [False, True])
async def test_a_redirect_is_not_a_completion_falls_over_and_is_a_free_502_when_last(
    pool, upstreams, start_service, make_account, stream
):
    answer = {"id": "chatcmpl-x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 9}}
    for name in ("openai", "openrouter"):
        upstreams[name].raw_chunks = [json.dumps(answer).encode()]
        upstreams[name].raw_status = 302
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        completion = sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=stream)
        list(completion) if stream else None

    assert raised.value.status_code == 502 and raised.value.body["code"] == "upstream_invalid_response"
    assert len(upstreams["openrouter"].requests) == 3, "a redirect generated nothing: tried next, and retried"
    rows = await usage_rows(pool, account.user_id)
    assert all(not row["success"] and row["credits_used"] == 0 for row in rows) and len(rows) == 3
    assert await balance(pool, account.user_id) == 100


async def test_a_200_whose_json_is_not_a_completion_is_not_charged(pool, upstreams, start_service, make_account):
    upstreams["openai"].raw_body = json.dumps(
        {"error": {"message": "overloaded"}, "usage": {"prompt_tokens": 5}}
    ).encode()
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    response = service.post("/v1/chat/completions", account.key, {"model": "gpt-4", "messages": MESSAGES})

    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_invalid_response"
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["credits_used"]) == (False, 0)
    assert await balance(pool, account.user_id) == 100


async def test_a_stream_silent_past_its_idle_timeout_before_its_first_chunk_is_not_retried_and_charged_its_prompt(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].first_delay = 1.5  # a reasoning model thinking before its first chunk
    service = start_service(upstreams, timeout_s=0.5)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        list(sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert raised.value.status_code == 504 and raised.value.response.headers["x-should-retry"] == "false"
    assert len(upstreams["openai"].requests) == 1 and len(upstreams["openrouter"].requests) == 0
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["status_code"], row["completion_tokens"]) == (False, 504, 0)
    assert row["credits_used"] == prompt_credits(row["prompt_tokens"], GPT4_INPUT) > 0


@pytest.mark.parametrize("status", [504, 524])
async def test_a_providers_own_gateway_timeout_is_not_run_elsewhere_and_charged_its_prompt(
    pool, upstreams, start_service, make_account, status
):
    upstreams["openai"].status = status  # its front gave up waiting; its origin may still be generating
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError) as raised:
        sdk(service, account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.status_code == 504 and raised.value.response.headers["x-should-retry"] == "false"
    assert len(upstreams["openai"].requests) == 1 and len(upstreams["openrouter"].requests) == 0
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["status_code"], row["completion_tokens"]) == (False, 504, 0)
    assert f"HTTP {status}" in row["error_message"]
    assert row["credits_used"] == prompt_credits(prompt_tokens_estimate(MESSAGES), GPT4_INPUT)


async def test_a_request_lost_after_sending_is_charged_exactly_its_prompt_estimate_within_its_hold(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].delay = 0.6
    service = start_service(upstreams, timeout_s=0.2)
    account = await make_account(credits_="100")
    lost: list[tuple[str, list[dict[str, str]]]] = []

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        # text a request may carry: no lone surrogate, no NUL (both refused with a 400 before any hold)
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=300),
        st.sampled_from([None, 1, 500]),
        st.booleans(),
    )
    def one_request(text, max_tokens, stream):
        messages = [{"role": "user", "content": text}]
        body = {"model": "gpt-4", "messages": messages, "stream": stream}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        response = service.post("/v1/chat/completions", account.key, body)
        assert response.status_code == 504 and response.headers["x-should-retry"] == "false"
        lost.append((response.headers["x-request-id"], messages))

    one_request()

    for request_id, messages in lost:
        (row,) = await pool.fetch("SELECT * FROM llm_usage_log WHERE request_id = $1", request_id)
        hold = await pool.fetchrow("SELECT * FROM credit_holds WHERE request_id = $1", request_id)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt_tokens_estimate(messages), 0)
        expected = prompt_credits(row["prompt_tokens"], GPT4_INPUT)
        assert hold["status"] == "settled" and row["credits_used"] == hold["charged"] == expected <= hold["amount"]
    await assert_reconciled(pool)

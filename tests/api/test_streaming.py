"""Streamed chat completions: passed through chunk by chunk, billed for what was generated."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from ledger.gateway.tokens import completion_tokens_estimate, prompt_tokens_estimate
from tests.api.ledger_state import wait_for_usage_row

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Stream to me." + " " + "0123456789" * 100}]


def local_credits(prompt: int, completion: int) -> Decimal:
    """gpt-4 at $30/$60 per 1M tokens, $0.10 a credit, balanced."""
    return ((prompt * 30 + completion * 60) / Decimal(1_000_000) / Decimal("0.1")).quantize(Decimal("0.000001"))


async def test_a_stream_passes_through_with_usage_when_asked(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(
        service.client(account.key).chat.completions.create(
            model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    final = chunks[-1]
    assert final.choices == [] and final.usage.prompt_tokens == 1000 and final.usage.completion_tokens == 500
    assert Decimal(final.usage.model_extra["cost"]) == Decimal("0.6")
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["success"] and row["credits_used"] == Decimal("0.6") and row["status_code"] == 200
    assert upstreams["openai"].requests[0]["body"]["stream_options"] == {"include_usage": True}


async def test_a_stream_without_include_usage_still_bills_and_sends_no_usage(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "the usage-only chunk the client did not ask for is dropped"
    assert upstreams["openai"].requests[0]["body"]["stream_options"] == {"include_usage": True}
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["credits_used"] == Decimal("0.6")
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == Decimal(
        "99.4"
    )


async def test_a_stream_with_no_upstream_usage_is_counted_locally(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = None
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    row = await wait_for_usage_row(pool, account.user_id)
    prompt, completion = (
        prompt_tokens_estimate(MESSAGES),
        completion_tokens_estimate("Hello from the fake upstream."),
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["credits_used"] == local_credits(prompt, completion)


async def test_chunks_arrive_before_the_stream_ends(upstreams, start_service, make_account):
    upstreams["openai"].words = [f"w{i}" for i in range(20)]
    upstreams["openai"].chunk_delay = 0.1
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    stream = await service.async_client(account.key).chat.completions.create(
        model="gpt-4", messages=MESSAGES, stream=True
    )
    first = await anext(aiter(stream))

    assert first.choices[0].delta.content == "w0"
    assert len(upstreams["openai"].requests) == 1
    await stream.close()


async def test_a_client_that_disconnects_mid_stream_is_billed_for_what_was_generated(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].words = [f"word{i}" for i in range(200)]
    upstreams["openai"].chunk_delay = 0.02
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    stream = service.client(account.key).chat.completions.create(
        model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    received = [next(stream).choices[0].delta.content for _ in range(3)]
    stream.close()

    row = await wait_for_usage_row(pool, account.user_id)
    assert received == ["word0", " word1", " word2"]
    assert not row["success"] and row["status_code"] == 499
    full = completion_tokens_estimate(" ".join(f"word{i}" for i in range(200)))
    assert 0 < row["completion_tokens"] < full, "billed for what was generated, not for the whole reply"
    assert row["credits_used"] == local_credits(row["prompt_tokens"], row["completion_tokens"])
    balance = await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id)
    assert balance == 100 - row["credits_used"]
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "settled"


async def test_an_upstream_that_drops_mid_stream_is_billed_and_the_client_told(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].words = ["one", "two", "three", "four", "five", "six"]
    upstreams["openai"].drop_after = 3
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    received = []
    with pytest.raises(openai.APIError, match="stream broke"):
        for chunk in service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content)

    assert "".join(received) == "one two three"
    row = await wait_for_usage_row(pool, account.user_id)
    assert not row["success"] and "upstream stream broke" in row["error_message"]
    assert row["completion_tokens"] == completion_tokens_estimate("one two three")
    assert row["credits_used"] == local_credits(prompt_tokens_estimate(MESSAGES), row["completion_tokens"])


async def test_a_stream_falls_over_before_its_first_byte(pool, upstreams, start_service, make_account):
    upstreams["openai"].status = 502
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    chunks = list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake upstream."
    row = await wait_for_usage_row(pool, account.user_id)
    assert row["provider"] == "openrouter" and row["success"]


async def test_the_async_sdk_streams_too(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    stream = await service.async_client(account.key).chat.completions.create(
        model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert Decimal(chunks[-1].usage.model_extra["cost"]) == Decimal("0.6")
    assert (await wait_for_usage_row(pool, account.user_id))["success"]


async def test_a_stream_that_breaks_before_its_first_chunk_charges_the_prompt_only(
    pool, upstreams, start_service, make_account
):
    # nothing was delivered, but the provider took the request: docs/upstream-timeouts.md
    upstreams["openai"].drop_after = 0
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.APIStatusError, match="may have generated"):
        list(service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    row = await wait_for_usage_row(pool, account.user_id)
    assert (row["success"], row["status_code"], row["completion_tokens"]) == (False, 502, 0)
    assert row["credits_used"] > 0
    assert (
        await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id)
        == 100 - (row["credits_used"])
    )
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "settled"

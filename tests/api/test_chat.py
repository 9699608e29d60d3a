"""POST /v1/chat/completions through the real openai SDK: priced, held, routed, settled."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import openai
import pytest

from ledger.gateway.tokens import completion_tokens_estimate, prompt_tokens_estimate, prompt_tokens_upper_bound
from tests.api.ledger_state import assert_reconciled, balance, usage_rows

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Say hello." + " " + "0123456789" * 100}]


@pytest.mark.parametrize(
    ("power_level", "provider", "credits"),
    [
        # gpt-4 at $30/$60 per 1M: 1000 prompt + 500 completion tokens = $0.06 = 0.6 credits at $0.10
        ("balanced", "openai", Decimal("0.600000")),
        ("precision", "openai", Decimal("0.900000")),  # anthropic does not serve gpt-4
        ("eco", "openrouter", Decimal("0.420000")),
    ],
)
async def test_a_request_is_charged_exactly_its_usage_at_its_power_level(
    pool, upstreams, start_service, make_account, power_level, provider, credits
):
    service = start_service(upstreams)
    account = await make_account(credits_="100", power_level=power_level)

    raw = service.client(account.key).chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.usage.prompt_tokens == 1000 and completion.usage.completion_tokens == 500
    assert Decimal(completion.usage.model_extra["cost"]) == credits
    assert Decimal(raw.headers["x-credits-charged"]) == credits
    assert Decimal(raw.headers["x-credits-remaining"]) == 100 - credits
    assert await balance(pool, account.user_id) == 100 - credits
    assert len(upstreams[provider].requests) == 1
    assert upstreams[provider].requests[0]["headers"]["authorization"] == f"Bearer sk-platform-{provider}"
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["provider"], row["power_level"], row["credits_used"], row["success"]) == (
        provider,
        power_level,
        credits,
        True,
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (1000, 500, 1500)
    assert row["cost_usd"] == Decimal("0.06") and row["status_code"] == 200 and not row["is_byok"]
    assert row["request_id"] == raw.headers["x-request-id"]
    txn = await pool.fetchrow("SELECT * FROM credit_transactions WHERE id = $1", row["transaction_id"])
    assert (txn["transaction_type"], txn["amount"], txn["reference_id"]) == (
        "usage",
        -credits,
        row["request_id"],
    )
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", account.user_id) == 0
    await assert_reconciled(pool)


async def test_the_power_level_header_overrides_the_users_level(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="100", power_level="balanced")

    raw = service.client(
        account.key, default_headers={"X-Power-Level": "precision"}
    ).chat.completions.with_raw_response.create(model="claude-3-haiku-20240307", messages=MESSAGES)

    # $0.25/$1.25 per 1M: 1000 + 500 tokens = $0.000875 = 0.00875 credits, x1.5
    assert Decimal(raw.headers["x-credits-charged"]) == Decimal("0.013125")
    assert len(upstreams["anthropic"].requests) == 1
    with pytest.raises(openai.BadRequestError) as raised:
        service.client(account.key, default_headers={"X-Power-Level": "turbo"}).chat.completions.create(
            model="gpt-4", messages=MESSAGES
        )
    assert raised.value.code == "invalid_power_level"


async def test_the_allowance_pays_before_the_balance(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10", monthly_allowance="1")

    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert await balance(pool, account.user_id) == 10
    body = service.get("/v1/credits/balance", account.key).json()
    assert (body["allowance_remaining"], body["credits_used_this_month"]) == ("0.400000", "0.600000")


@pytest.mark.parametrize("failure", ["503", "429", "500", "connect"])
async def test_a_failing_provider_falls_over_to_the_next_in_order(
    pool, upstreams, start_service, make_account, failure
):
    # a read timeout does not fall over: the provider may be generating (tests/api/test_upstream_timeouts.py)
    if failure == "connect":
        upstreams["openai"].server.stop()
    else:
        upstreams["openai"].status = int(failure)
    service = start_service(upstreams, timeout_s=0.5)
    account = await make_account(credits_="100")

    completion = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert completion.choices[0].message.content
    assert len(upstreams["anthropic"].requests) == 0, "anthropic does not serve gpt-4"
    assert len(upstreams["openrouter"].requests) == 1
    (row,) = await usage_rows(pool, account.user_id)
    assert row["provider"] == "openrouter" and row["success"]
    assert await balance(pool, account.user_id) == Decimal("99.4")


async def test_providers_are_tried_in_the_power_levels_order(pool, upstreams, start_service, make_account):
    for fake in upstreams.values():
        fake.status = 503
    service = start_service(upstreams)
    account = await make_account(credits_="100", power_level="precision")

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).chat.completions.create(model="claude-3-haiku-20240307", messages=MESSAGES)

    assert raised.value.status_code == 502
    tried = [name for name in ("anthropic", "openai", "openrouter", "together") if upstreams[name].requests]
    assert tried == ["anthropic", "openrouter"], "preferred first, then any other that serves the model"
    (row,) = await usage_rows(pool, account.user_id)
    assert not row["success"] and row["status_code"] == 502 and row["credits_used"] == 0
    assert await balance(pool, account.user_id) == 100
    assert await pool.fetchval("SELECT status FROM credit_holds WHERE user_id = $1", account.user_id) == "released"
    await assert_reconciled(pool)


async def test_not_enough_credits_is_a_402_before_any_upstream_call(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="0.5")

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    error = raised.value
    assert error.status_code == 402
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert error.response.headers["x-should-retry"] == "false"
    assert all(not fake.requests for fake in upstreams.values())
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert await balance(pool, account.user_id) == Decimal("0.5")


async def test_a_smaller_max_tokens_fits_a_smaller_balance(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = (10, 5)
    service = start_service(upstreams)
    account = await make_account(credits_="0.5")

    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES, max_tokens=50)

    assert len(upstreams["openai"].requests) == 1
    assert upstreams["openai"].requests[0]["body"]["max_tokens"] == 50


async def test_50_parallel_requests_with_credits_for_20_serve_at_most_20(pool, upstreams, start_service, make_account):
    max_tokens = 100
    prompt = prompt_tokens_upper_bound(MESSAGES)
    # every request uses exactly what it may: the hold is the charge
    upstreams["openai"].usage = (prompt, max_tokens)
    upstreams["openai"].delay = 0.2
    per_request = ((prompt * 30 + max_tokens * 60) / Decimal(1_000_000) / Decimal("0.1")).quantize(Decimal("0.000001"))
    service = start_service(upstreams)
    account = await make_account(credits_=str(per_request * 20))
    client = service.async_client(account.key)

    async def one() -> str:
        try:
            await client.chat.completions.create(model="gpt-4", messages=MESSAGES, max_tokens=max_tokens)
        except openai.APIStatusError as exc:
            return str(exc.status_code)
        return "served"

    outcomes = await asyncio.gather(*(one() for _ in range(50)))

    assert outcomes.count("served") == 20
    assert outcomes.count("402") == 30
    assert await balance(pool, account.user_id) == 0
    rows = await usage_rows(pool, account.user_id)
    assert len(rows) == 20 and all(r["success"] and r["credits_used"] == per_request for r in rows)
    charged = await pool.fetchval(
        "SELECT -sum(amount) FROM credit_transactions WHERE user_id = $1 AND transaction_type = 'usage'",
        account.user_id,
    )
    assert charged == per_request * 20
    await assert_reconciled(pool)


async def test_an_unknown_model_is_a_404_and_nothing_is_charged(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.NotFoundError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-9000", messages=MESSAGES)

    assert raised.value.code == "model_not_found"
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert await balance(pool, account.user_id) == 10


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "missing_model"),
        (b'{"model": "gpt-4", "messages": []}', "invalid_messages"),
        (
            b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
            "invalid_max_tokens",
        ),
        (
            b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            "invalid_stream",
        ),
    ],
)
async def test_a_bad_request_is_a_400_in_openais_shape_and_writes_nothing(
    pool, upstreams, start_service, make_account, body, code
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    response = httpx.post(
        f"{service.url}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {account.key}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert await pool.fetchval("SELECT count(*) FROM llm_usage_log") == 0


async def test_an_upstream_client_error_passes_through_and_nothing_is_charged(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].status = 400
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    with pytest.raises(openai.BadRequestError):
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert len(upstreams["openrouter"].requests) == 0, "a 400 is the request's own fault: no fallback"
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 400, 0)
    assert await balance(pool, account.user_id) == 10
    await assert_reconciled(pool)


async def test_usage_is_counted_locally_when_the_upstream_reports_none(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = None
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    completion = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    prompt = prompt_tokens_estimate(MESSAGES)
    reply = completion_tokens_estimate("Hello from the fake upstream.")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, reply)
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, reply)
    expected = ((prompt * 30 + reply * 60) / Decimal(1_000_000) / Decimal("0.1")).quantize(Decimal("0.000001"))
    assert row["credits_used"] == expected
    assert row["usage_anomaly"] == "no usage reported: counted from the request and the answer"


async def test_a_revoked_expired_or_wrong_key_is_a_401(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    revoked = await make_account(credits_="10")
    expired = await make_account(credits_="10")
    await pool.execute("UPDATE gateway_api_keys SET is_active = false WHERE id = $1", revoked.key_id)
    await pool.execute(
        "UPDATE gateway_api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", expired.key_id
    )

    for key in (revoked.key, expired.key, "sk-lg-not-a-real-key", account.key[:-1]):
        with pytest.raises(openai.AuthenticationError) as raised:
            service.client(key).chat.completions.create(model="gpt-4", messages=MESSAGES)
        assert raised.value.code == "invalid_api_key"
    assert all(not fake.requests for fake in upstreams.values())
    assert await pool.fetchval("SELECT count(*) FROM llm_usage_log") == 0

    assert await pool.fetchval("SELECT last_used_at FROM gateway_api_keys WHERE id = $1", account.key_id) is None
    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert await pool.fetchval("SELECT last_used_at FROM gateway_api_keys WHERE id = $1", account.key_id) is not None


async def test_models_lists_what_the_configured_providers_serve(upstreams, start_service, make_account):
    del upstreams["anthropic"]
    service = start_service(upstreams)
    account = await make_account()

    models = {m.id for m in service.client(account.key).models.list()}

    assert "gpt-4" in models and "claude-3-opus-20240229" in models  # openrouter serves claude
    with pytest.raises(openai.AuthenticationError):
        service.client("sk-lg-wrong").models.list()


async def test_the_demo_provider_serves_when_no_provider_is_configured(pool, start_service, make_account):
    service = start_service(None)
    account = await make_account()
    await pool.execute("UPDATE user_credits SET monthly_allowance = 100 WHERE user_id = $1", account.user_id)

    say_hello = [{"role": "user", "content": "Say hello."}]
    completion = service.client(account.key).chat.completions.create(model="gpt-3.5-turbo", messages=say_hello)

    assert completion.choices[0].message.content == "Hello from the demo provider. You said: Say hello."
    (row,) = await usage_rows(pool, account.user_id)
    assert row["provider"] == "demo" and row["credits_used"] > 0


async def test_a_slow_upstream_does_not_block_other_requests(pool, upstreams, start_service, make_account):
    upstreams["openai"].delay = 3.0
    service = start_service(upstreams)
    slow, fast = await make_account(credits_="100"), await make_account(credits_="100")

    pending = asyncio.ensure_future(
        service.async_client(slow.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    )
    while not upstreams["openai"].requests:
        await asyncio.sleep(0.01)
    await service.async_client(fast.key).chat.completions.create(model="claude-3-haiku-20240307", messages=MESSAGES)

    assert not pending.done(), "the fast request was served while the slow one was still upstream"
    await pending


async def test_the_hold_covers_every_requested_choice_and_the_tools(pool, upstreams, start_service, make_account):
    upstreams["openai"].usage = (10, 5)  # each served request costs 0.006 credits
    short = [{"role": "user", "content": "Say hello."}]
    service = start_service(upstreams)
    prompt = prompt_tokens_upper_bound(short)
    one_reply = ((prompt * 30 + 100 * 60) / Decimal(1_000_000) / Decimal("0.1")).quantize(Decimal("0.000001"))
    account = await make_account(credits_=str(one_reply * 2 + Decimal("0.006")))
    client = service.client(account.key)
    tool = {"type": "function", "function": {"name": "lookup", "description": "x" * 400, "parameters": {}}}

    client.chat.completions.create(model="gpt-4", messages=short, max_tokens=100, n=2)  # exactly 2 replies left
    with pytest.raises(openai.APIStatusError) as three:
        client.chat.completions.create(model="gpt-4", messages=short, max_tokens=100, n=3)
    with pytest.raises(openai.APIStatusError) as tools:
        client.chat.completions.create(model="gpt-4", messages=short, max_tokens=100, n=2, tools=[tool])
    client.chat.completions.create(model="gpt-4", messages=short, max_tokens=100, n=2)

    assert three.value.status_code == 402 and tools.value.status_code == 402
    assert len(upstreams["openai"].requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_prompt_tokens_and_reasoning_tokens_are_priced_at_their_own_prices(
    pool, upstreams, start_service, make_account, stream
):
    # gpt-4 at openai: $30 input, $3 a cached read, $60 output (reasoning has no price of its own)
    await pool.execute(
        "UPDATE model_prices SET cache_read_usd_per_mtok = 3 WHERE provider = 'openai' AND model = 'gpt-4'"
    )
    upstreams["openai"].usage_json = (
        '{"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,'
        ' "prompt_tokens_details": {"cached_tokens": 800}, "completion_tokens_details": {"reasoning_tokens": 300}}'
    )
    service = start_service({"openai": upstreams["openai"]})
    account = await make_account(credits_="100")
    client = service.client(account.key)

    if stream:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="gpt-4", messages=MESSAGES).usage

    # 200 uncached x $30 + 800 cached x $3 + 500 output x $60, per 1M = $0.0384 = 0.384 credits
    credits = (200 * Decimal(30) + 800 * Decimal(3) + 500 * Decimal(60)) / 1_000_000 / Decimal("0.10")
    assert Decimal(usage.model_extra["cost"]) == credits
    assert usage.prompt_tokens_details.cached_tokens == 800
    assert usage.completion_tokens_details.reasoning_tokens == 300
    assert await balance(pool, account.user_id) == 100 - credits
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["api"], row["prompt_tokens"], row["cache_read_tokens"], row["completion_tokens"]) == (
        "chat",
        1000,
        800,
        500,
    )
    assert row["reasoning_tokens"] == 300 and row["credits_used"] == credits and row["usage_anomaly"] is None
    await assert_reconciled(pool)


async def test_cache_writes_a_chat_usage_reports_are_priced_at_the_write_price(
    pool, upstreams, start_service, make_account
):
    # OpenRouter reports cache writes in chat usage (prompt_tokens_details.cache_write_tokens)
    await pool.execute(
        "UPDATE model_prices SET cache_write_usd_per_mtok = 37.5 WHERE provider = 'openai' AND model = 'gpt-4'"
    )
    upstreams[
        "openai"
    ].usage_json = (
        '{"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cache_write_tokens": 600}}'
    )
    service = start_service({"openai": upstreams["openai"]})
    account = await make_account(credits_="100")

    usage = service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES).usage

    # 400 plain x $30 + 600 written x $37.50 + 500 output x $60, per 1M = $0.0645
    credits = (400 * Decimal(30) + 600 * Decimal("37.5") + 500 * Decimal(60)) / 1_000_000 / Decimal("0.10")
    assert Decimal(usage.model_extra["cost"]) == credits
    assert usage.prompt_tokens_details.to_dict()["cache_write_tokens"] == 600
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["cache_write_tokens"], row["credits_used"], row["usage_anomaly"]) == (600, credits, None)


async def test_a_provider_refusal_not_in_openais_shape_is_told_in_it_and_nothing_charged(
    pool, upstreams, start_service, make_account
):
    upstreams["openai"].raw_chunks, upstreams["openai"].raw_status = [b"too big"], 413
    upstreams["openai"].raw_content_type = "text/plain"
    service = start_service({"openai": upstreams["openai"]})
    account = await make_account(credits_="10")

    with pytest.raises(openai.APIStatusError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert raised.value.status_code == 413
    error = raised.value.body
    assert error["code"] == "upstream_refused" and "too big" in error["message"]
    assert await balance(pool, account.user_id) == 10
    (row,) = await usage_rows(pool, account.user_id)
    assert (row["success"], row["status_code"], row["credits_used"]) == (False, 413, 0)


async def test_a_model_whose_calls_cost_a_search_fee_is_refused_before_anything_is_held(
    pool, upstreams, start_service, make_account
):
    """gpt-4o-search-preview searches on every call, at a fee per call the gateway cannot charge:
    refused with a clear 404 in OpenAI's shape, nothing held or sent (it was served at token prices,
    the operator paying ~270x what the user was charged)."""
    await pool.execute(
        "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok)"
        " VALUES ('openai', 'gpt-4o-search-preview', 2.5, 10)"
    )
    service = start_service(upstreams)
    account = await make_account(credits_="100")

    with pytest.raises(openai.NotFoundError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4o-search-preview", messages=MESSAGES)

    assert "fee per call" in raised.value.message
    assert upstreams["openai"].requests == []
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0

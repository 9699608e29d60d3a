"""Parameters per model (issue 17, item 10). With no output limit from the client the gateway sent
`max_tokens: 32768` to every model: OpenAI's reasoning models refuse `max_tokens` (they take
`max_completion_tokens`), gpt-4o and gpt-4o-mini refuse 32,768 (their limit is 16,384), and on
Anthropic max_tokens was cut to 32,768 while thinking.budget_tokens stayed at 40,000. The limits
now come from LiteLLM's model table (vendored), and each model gets the parameter it takes. The
fake upstream refuses what OpenAI refuses, so these tests prove what is sent."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest

from ledger.gateway import model_limits
from ledger.gateway.price_catalog import read_catalog
from tests.api.test_messages import client as anthropic_client
from tests.fake_anthropic import FakeAnthropic

MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]


async def price(pool, provider: str, model: str, max_output_tokens: int = 32768, window: int = 200000) -> None:
    """A row as a sync before the limits were known wrote it: 32,768 for every model."""
    await pool.execute(
        "INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,"
        " max_output_tokens) VALUES ($1, $2, 1, 4, $3, $4)",
        provider,
        model,
        window,
        max_output_tokens,
    )


def test_the_vendored_table_has_the_real_limits_and_the_sync_uses_them():
    assert model_limits.limits_of("gpt-4o").max_output_tokens == 16384
    assert model_limits.limits_of("gpt-4o-mini").max_output_tokens == 16384
    assert model_limits.limits_of("o3").reasoning and model_limits.limits_of("gpt-5").reasoning
    assert not model_limits.limits_of("gpt-4o").reasoning
    synced = {m.model: m.max_output_tokens for m in read_catalog("openai").models}
    assert synced["gpt-4o"] == 16384 and synced["gpt-4o-mini"] == 16384
    assert all(limit <= (model_limits.limits_of(name) or model_limits.ModelLimits(4096, None, False)).max_output_tokens
               for name, limit in synced.items())  # fmt: skip


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini"])
async def test_a_reasoning_model_gets_max_completion_tokens(pool, upstreams, start_service, make_account, model):
    await price(pool, "openai", model)
    upstreams["openai"].reasoning_models = {model}
    service = start_service(upstreams)
    account = await make_account(credits_="1000")
    client = service.client(account.key)

    client.chat.completions.create(model=model, messages=MESSAGES)  # no cap from the client
    client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=500)  # the older field

    first, second = (r["body"] for r in upstreams["openai"].requests)
    limit = model_limits.limits_of(model).max_output_tokens
    assert "max_tokens" not in first and first["max_completion_tokens"] == min(limit, 32768)
    assert "max_tokens" not in second and second["max_completion_tokens"] == 500


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini"])
async def test_gpt_4o_is_sent_its_real_output_limit(pool, upstreams, start_service, make_account, model):
    await price(pool, "openai", model, window=128000)  # the row still says 32,768
    upstreams["openai"].output_limits = {model: 16384}
    service = start_service(upstreams)
    account = await make_account(credits_="1000")

    reply = service.client(account.key).chat.completions.create(model=model, messages=MESSAGES)

    assert reply.choices[0].message.content
    assert upstreams["openai"].requests[0]["body"]["max_tokens"] == 16384


async def test_a_thinking_budget_the_output_limit_cannot_hold_is_refused_before_anything_is_held(
    pool, upstreams, start_service, make_account
):
    await price(pool, "anthropic", "claude-limit-test", max_output_tokens=32768)
    fake = FakeAnthropic(input_tokens=100, output_tokens=50).start()
    try:
        service = start_service({"anthropic": fake, "openai": upstreams["openai"]})
        account = await make_account(credits_="1000")

        with pytest.raises(anthropic.BadRequestError) as raised:
            anthropic_client(service, account.key).messages.create(
                model="claude-limit-test",
                max_tokens=50000,
                thinking={"type": "enabled", "budget_tokens": 40000},
                messages=[{"role": "user", "content": "Think."}],
            )
        assert "budget_tokens" in raised.value.message and "32768" in raised.value.message
        assert fake.requests == []
        assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0

        anthropic_client(service, account.key).messages.create(
            model="claude-limit-test",
            max_tokens=50000,
            thinking={"type": "enabled", "budget_tokens": 20000},
            messages=[{"role": "user", "content": "Think."}],
        )
        sent = fake.requests[0]["body"]
        assert sent["max_tokens"] == 32768 and sent["thinking"]["budget_tokens"] < sent["max_tokens"]
    finally:
        fake.stop()


def test_the_table_is_refreshed_from_a_litellm_file(tmp_path):
    litellm = {
        "gpt-new": {"litellm_provider": "openai", "mode": "chat", "max_output_tokens": 1234, "max_input_tokens": 9999},
        "o9": {"litellm_provider": "openai", "mode": "chat", "max_output_tokens": 5000, "supports_reasoning": True},
        "some-image-model": {"litellm_provider": "openai", "mode": "image_generation"},
        "bedrock/x": {"litellm_provider": "bedrock", "mode": "chat", "max_output_tokens": 10},
        "sample_spec": "not a model",
    }
    source = tmp_path / "model_prices_and_context_window.json"
    source.write_text(json.dumps(litellm))
    target = tmp_path / "model_limits.json"

    assert model_limits.refresh(source, target) == 2
    kept = json.loads(target.read_text())["models"]
    assert kept == {
        "gpt-new": {"max_output_tokens": 1234, "max_input_tokens": 9999, "reasoning": False},
        "o9": {"max_output_tokens": 5000, "max_input_tokens": None, "reasoning": True},
    }
    assert Path(model_limits.DATA).exists()

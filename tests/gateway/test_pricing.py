"""Credits from tokens: exact Decimal arithmetic, rounded half-up to the ledger's 6 places."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.gateway.pricing import ModelPrice, cost_usd, credits_for

GPT4 = ModelPrice("openai", "gpt-4", Decimal(30), Decimal(60), 8192, 8192)
HAIKU = ModelPrice("anthropic", "claude-3-haiku-20240307", Decimal("0.25"), Decimal("1.25"), 200000, 4096)


def test_cost_is_tokens_times_price_per_million():
    assert cost_usd(GPT4, 1000, 500) == Decimal("0.06")
    assert cost_usd(HAIKU, 1000, 500) == Decimal("0.000875")
    assert cost_usd(GPT4, 0, 0) == 0


@pytest.mark.parametrize(("multiplier", "expected"), [("0.7", "0.420000"), ("1.0", "0.600000"), ("1.5", "0.900000")])
def test_credits_follow_the_power_levels_multiplier(multiplier, expected):
    credits = credits_for(Decimal("0.06"), usd_per_credit=Decimal("0.10"), multiplier=Decimal(multiplier))

    assert credits == Decimal(expected) and str(credits) == expected


def test_credits_round_half_up_at_six_places():
    # 1 token of haiku output: $0.00000125 = 0.0000125 credits
    assert credits_for(cost_usd(HAIKU, 0, 1), usd_per_credit=Decimal("0.10"), multiplier=Decimal(1)) == Decimal(
        "0.000013"
    )
    assert credits_for(Decimal("0.0000001"), usd_per_credit=Decimal("0.10"), multiplier=Decimal("0.7")) == Decimal(
        "0.000001"
    )
    assert credits_for(Decimal("0.00000004"), usd_per_credit=Decimal("0.10"), multiplier=Decimal(1)) == 0


def test_a_different_credit_price_scales_credits():
    assert credits_for(Decimal("0.06"), usd_per_credit=Decimal("0.01"), multiplier=Decimal(1)) == Decimal(6)

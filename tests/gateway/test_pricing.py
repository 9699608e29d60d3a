"""Credits from tokens: exact Decimal arithmetic, rounded half-up to the ledger's 6 places."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.gateway.pricing import (
    INPUT_TYPES,
    OUTPUT_TYPES,
    PRICE_COLUMNS,
    TOKEN_TYPES,
    ModelPrice,
    Tier,
    TokenCounts,
    cost,
    cost_usd,
    credits_for,
    leaf_counts,
    most_cost,
)

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


# --- every token type, as genai-prices prices it ---------------------------------------------

prices = st.one_of(st.none(), st.decimals(min_value=0, max_value=200, places=6))
tier_lists = st.lists(
    st.builds(Tier, st.integers(0, 500_000), st.decimals(min_value=0, max_value=400, places=6)), max_size=2
).map(lambda tiers: tuple(sorted(tiers, key=lambda t: t.above)))


@st.composite
def model_prices(draw: st.DrawFn) -> ModelPrice:
    own = {PRICE_COLUMNS[name]: draw(prices) for name in TOKEN_TYPES if name not in ("input", "output")}
    tiered = draw(st.lists(st.sampled_from(TOKEN_TYPES), max_size=3, unique=True))
    tiers = {name: draw(tier_lists) for name in tiered if name in ("input", "output") or own[PRICE_COLUMNS[name]]}
    return ModelPrice(
        "p",
        "m",
        draw(st.decimals(min_value=0, max_value=200, places=6)),
        draw(st.decimals(min_value=0, max_value=200, places=6)),
        1_000_000,
        100_000,
        tiers={name: value for name, value in tiers.items() if value},
        **own,
    )


any_counts = st.builds(TokenCounts, *[st.integers(-10, 2_000_000) for _ in TOKEN_TYPES])


@given(any_counts)
def test_consistent_counts_fit_every_part_in_what_contains_it(counts):
    fitted, cut = replace(counts, input=max(counts.input, 0), output=max(counts.output, 0)).consistent()

    c = fitted
    assert 0 <= c.cache_audio_read <= min(c.cache_read, c.input_audio)
    assert 0 <= c.cache_image_read <= min(c.cache_read - c.cache_audio_read, c.input_image)
    assert 0 <= c.cache_write_1h <= c.cache_write
    assert (
        c.cache_read + c.cache_write + (c.input_audio - c.cache_audio_read) + (c.input_image - c.cache_image_read)
        <= c.input
    )
    assert c.reasoning + c.output_audio + c.output_image <= c.output
    assert all(value >= 0 for value in c.as_dict().values())
    assert (not cut) == (fitted == replace(counts, input=max(counts.input, 0), output=max(counts.output, 0)))


@given(model_prices(), any_counts, st.frozensets(st.sampled_from(TOKEN_TYPES)))
def test_a_usage_of_the_types_an_api_reports_is_never_above_the_hold(price, counts, types):
    reported = {name: (value if name in types else 0) for name, value in counts.as_dict().items()}
    fitted, _ = TokenCounts(**{**reported, "input": max(counts.input, 0), "output": max(counts.output, 0)}).consistent()

    assert cost(price, fitted) <= most_cost(price, fitted.input, fitted.output, types)


@given(model_prices(), any_counts)
def test_every_token_is_priced_once_and_never_above_the_hold(price, counts):
    fitted, _ = replace(counts, input=max(counts.input, 0), output=max(counts.output, 0)).consistent()

    leaves = leaf_counts(price, fitted)
    assert all(leaf >= 0 for leaf in leaves.values())
    assert sum(leaves[name] for name in leaves if name in INPUT_TYPES) == fitted.input
    assert sum(leaves[name] for name in leaves if name in OUTPUT_TYPES) == fitted.output
    assert 0 <= cost(price, fitted) <= most_cost(price, fitted.input, fitted.output)


def test_cached_reads_and_cache_writes_are_priced_at_their_own_prices():
    sonnet = ModelPrice(
        "anthropic",
        "claude-sonnet-4-5",
        Decimal(3),
        Decimal(15),
        200_000,
        64_000,
        cache_read_usd_per_mtok=Decimal("0.3"),
        cache_write_usd_per_mtok=Decimal("3.75"),
        cache_write_1h_usd_per_mtok=Decimal(6),
        tiers={"input": (Tier(200_000, Decimal(6)),)},
    )
    counts = TokenCounts(input=10_000, output=1_000, cache_read=6_000, cache_write=3_000, cache_write_1h=1_000)

    # 1,000 plain x $3 + 6,000 read x $0.30 + 2,000 5-minute writes x $3.75 + 1,000 1-hour writes x $6
    # + 1,000 output x $15, per 1M
    assert cost(sonnet, counts) == Decimal("0.0003") * 10 + Decimal("0.0018") + Decimal("0.0075") + Decimal(
        "0.006"
    ) + Decimal("0.015")
    # above 200,000 input tokens every plain input token is priced at the tier's $6
    big = TokenCounts(input=300_000, output=0)
    assert cost(sonnet, big) == Decimal("1.8")


def test_a_type_with_no_price_of_its_own_is_priced_as_its_parent():
    gpt = ModelPrice("openai", "o", Decimal(2), Decimal(8), 128_000, 4096, cache_read_usd_per_mtok=Decimal("0.5"))
    counts = TokenCounts(input=1_000, output=1_000, cache_read=400, cache_write=100, reasoning=600, input_audio=50)

    # cache writes and audio at the input price, reasoning at the output price
    assert cost(gpt, counts) == (600 * Decimal(2) + 400 * Decimal("0.5") + 1_000 * Decimal(8)) / 1_000_000

"""The price catalog: genai-prices' current prices synced into model_prices, and the pricing proof
(pricing.cost on a synced row == genai-prices' own calculation, for any token mix)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot, types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidArgument
from ledger.gateway import catalog, per_call_fees, prices, pricing
from ledger.gateway.price_catalog import MAX_OUTPUT_TOKENS, read_catalog, sync_prices
from ledger.gateway.pricing import GENAI_USAGE_KEYS, TokenCounts

NOW = datetime.now(UTC)
PRICE_COLUMNS = list(pricing.PRICE_COLUMNS.values())


def catalog_model(provider_id: str, model: str) -> types.ModelInfo:
    provider = next(p for p in data_snapshot.get_snapshot().providers if p.id == provider_id)
    found = provider.find_model(model)
    assert found is not None
    return found


async def row(pool, provider: str, model: str):
    return await pool.fetchrow("SELECT * FROM model_prices WHERE provider = $1 AND model = $2", provider, model)


async def table(pool):
    return [dict(r) for r in await pool.fetch("SELECT * FROM model_prices ORDER BY provider, model")]


async def test_a_sync_adds_todays_models_with_their_tiers_aliases_and_defaults(pool):
    report = await sync_prices(pool, ["anthropic", "openai"])

    added = {(a["provider"], a["model"]) for a in report.added}
    assert ("anthropic", "claude-sonnet-4-5") in added and ("openai", "gpt-4o") in added
    sonnet = await row(pool, "anthropic", "claude-sonnet-4-5")
    expected = catalog_model("anthropic", "claude-sonnet-4-5").get_prices(NOW)
    assert isinstance(expected.input_mtok, types.TieredPrices)
    assert sonnet["input_usd_per_mtok"] == expected.input_mtok.base
    assert sonnet["cache_write_1h_usd_per_mtok"] == expected.cache_write_1h_mtok.base
    tiers = json.loads(sonnet["tiers"])
    assert set(tiers) == {"input", "output", "cache_read", "cache_write", "cache_write_1h"}
    assert [(t["above"], Decimal(t["usd_per_mtok"])) for t in tiers["output"]] == [
        (t.start, t.price) for t in expected.output_mtok.tiers
    ]
    assert sonnet["synced_from"] == f"genai-prices {genai_prices.__version__}"
    assert json.loads(sonnet["synced_prices"])["input_usd_per_mtok"] == str(expected.input_mtok.base)
    # the catalog has no output limit: LiteLLM's table's (the model's real one), never above the
    # context window; a model the table does not list gets the conservative default
    assert (sonnet["context_window"], sonnet["max_output_tokens"]) == (200_000, 64_000)
    embedding = await row(pool, "openai", "text-embedding-3-small")
    assert (embedding["max_output_tokens"], embedding["context_window"]) == (MAX_OUTPUT_TOKENS, 8192)
    assert embedding["output_usd_per_mtok"] == 0, "no output price: genai-prices charges 0 for output"

    # each exact alias is its own row at the model's prices
    gpt4o = await row(pool, "openai", "gpt-4o")
    alias = await row(pool, "openai", "gpt-4o-2024-11-20")
    assert [alias[c] for c in PRICE_COLUMNS] == [gpt4o[c] for c in PRICE_COLUMNS]
    assert gpt4o["cache_read_usd_per_mtok"] == catalog_model("openai", "gpt-4o").get_prices(NOW).cache_read_mtok

    # what the gateway cannot meter is skipped, with the reason
    skipped = {s["model"]: s["reason"] for s in report.skipped}
    assert "audio_hours" in skipped["whisper-1"] and "input_mchars" in skipped["tts-1"]
    assert await row(pool, "openai", "whisper-1") is None and await row(pool, "openai", "tts-1") is None


async def test_a_second_sync_changes_nothing(pool):
    first = await sync_prices(pool, ["openai", "anthropic", "openai:demo"])
    before = await table(pool)

    second = await sync_prices(pool, ["openai", "anthropic", "openai:demo"])

    assert second.added == second.updated == [] and second.unchanged == len(first.added) + first.unchanged
    assert await table(pool) == before


async def test_rows_not_from_the_catalog_keep_their_prices_unless_forced(pool):
    """The seed's rows and an operator's never had synced_prices: the catalog does not own them."""
    # an operator's price for a catalog model, and a seed row an operator repriced with psql
    await prices.add_price(pool, "openai", "gpt-4o", "9", "9")
    await pool.execute(
        "UPDATE model_prices SET input_usd_per_mtok = 31 WHERE model = 'gpt-4' AND provider <> 'openrouter'"
    )
    seeded = {
        (r["provider"], r["model"]): dict(r)
        for r in await pool.fetch("SELECT * FROM model_prices WHERE provider IN ('openai', 'anthropic', 'demo')")
    }

    report = await sync_prices(pool, ["openai", "anthropic", "openai:demo"])

    for (provider, model), before in seeded.items():
        assert dict(await row(pool, provider, model)) == before, f"{provider}/{model} is not the catalog's"
    kept = {(k["provider"], k["model"]): k["reason"] for k in report.kept}
    reason = "not from the catalog (seeded or added by an operator)"
    assert kept == {("openai", "gpt-4o"): reason, ("openai", "gpt-4"): reason, ("demo", "gpt-4"): reason}
    # the seed's other rows are today's catalog prices (unchanged), or names the catalog lacks
    assert await row(pool, "anthropic", "claude-3-opus-20240229") is not None

    forced = await sync_prices(pool, ["openai"], force=True)

    assert {(u["provider"], u["model"]) for u in forced.updated} == {("openai", "gpt-4o"), ("openai", "gpt-4")}
    expected = catalog_model("openai", "gpt-4").get_prices(NOW)
    assert (await row(pool, "openai", "gpt-4"))["input_usd_per_mtok"] == expected.input_mtok
    assert (await row(pool, "demo", "gpt-4"))["input_usd_per_mtok"] == 31, "only the sources named"


async def test_a_catalog_price_change_updates_a_synced_row_but_not_the_operators_columns(pool):
    await sync_prices(pool, ["anthropic"])
    # as if an earlier catalog had priced it at 1: the row still holds what that sync wrote
    await pool.execute(
        """UPDATE model_prices
              SET input_usd_per_mtok = 1, context_window = 1000, max_output_tokens = 500, is_active = false,
                  synced_prices = jsonb_set(synced_prices, '{input_usd_per_mtok}', '"1"')
            WHERE provider = 'anthropic' AND model = 'claude-opus-4-1'"""
    )

    report = await sync_prices(pool, ["anthropic"])

    today = catalog_model("anthropic", "claude-opus-4-1").get_prices(NOW).input_mtok
    assert report.updated == [
        {"provider": "anthropic", "model": "claude-opus-4-1", "changes": {"input_usd_per_mtok": ["1", str(today)]}}
    ]
    updated = await row(pool, "anthropic", "claude-opus-4-1")
    assert updated["input_usd_per_mtok"] == today
    assert (updated["context_window"], updated["max_output_tokens"], updated["is_active"]) == (1000, 500, False)
    assert json.loads(updated["synced_prices"])["input_usd_per_mtok"] == str(today)


async def test_a_row_an_operator_changed_is_kept_unless_forced(pool):
    await sync_prices(pool, ["anthropic"])
    await prices.change_price(pool, "anthropic", "claude-opus-4-5", cache_read_usd_per_mtok="0.4")

    kept = await sync_prices(pool, ["anthropic"])
    dry = await sync_prices(pool, ["anthropic"], force=True, dry_run=True)
    still = await row(pool, "anthropic", "claude-opus-4-5")
    forced = await sync_prices(pool, ["anthropic"], force=True)

    assert kept.kept == [
        {"provider": "anthropic", "model": "claude-opus-4-5", "reason": "changed by an operator since the last sync"}
    ]
    assert [u["model"] for u in dry.updated] == ["claude-opus-4-5"] and still["cache_read_usd_per_mtok"] == Decimal(
        "0.4"
    )
    today = catalog_model("anthropic", "claude-opus-4-5").get_prices(NOW).cache_read_mtok
    assert forced.updated[0]["changes"] == {"cache_read_usd_per_mtok": ["0.4", str(today)]}
    assert (await row(pool, "anthropic", "claude-opus-4-5"))["cache_read_usd_per_mtok"] == today
    assert (await sync_prices(pool, ["anthropic"])).kept == [], "forced, it is the catalog's again"


async def test_a_dry_run_writes_nothing(pool):
    before = await table(pool)

    report = await sync_prices(pool, ["openai", "anthropic:claude-direct"], dry_run=True)

    assert report.dry_run and len(report.added) > 100
    assert any(a["provider"] == "claude-direct" for a in report.added)
    assert await table(pool) == before


async def test_sources_are_checked_before_anything_is_written(pool):
    before = await table(pool)

    for bad in (["openai", "no-such-catalog"], [], ["openai:"], [":demo"]):
        with pytest.raises(InvalidArgument):
            await sync_prices(pool, bad)

    assert await table(pool) == before


def _with_catalog(models: list[types.ModelInfo]) -> data_snapshot.DataSnapshot:
    provider = types.Provider(id="acme", name="Acme", api_pattern="acme", models=models)
    return data_snapshot.DataSnapshot(providers=[provider], from_auto_update=False)


def _model(model_id: str, prices: types.ModelPrice, *aliases: str) -> types.ModelInfo:
    clauses: list[types.MatchLogic] = [types.ClauseEquals(name) for name in (model_id, *aliases)]
    return types.ModelInfo(id=model_id, match=types.ClauseOr(clauses), prices=prices)


def test_prices_numeric_12_6_cannot_hold_exactly_are_skipped_never_rounded():
    d = Decimal
    snapshot = _with_catalog(
        [
            _model("fine", types.ModelPrice(input_mtok=d("0.000001"), output_mtok=d("999999.9999990")), "fine-1"),
            _model("too-precise", types.ModelPrice(input_mtok=d("0.0000001"), output_mtok=d(1))),
            _model("too-big", types.ModelPrice(input_mtok=d(1), output_mtok=d(1_000_000))),
            _model(
                "tier-too-precise",
                types.ModelPrice(
                    input_mtok=types.TieredPrices(d(1), [types.Tier(100, d("1.2345678"))]), output_mtok=d(1)
                ),
            ),
            _model("no-input", types.ModelPrice(output_mtok=d(1))),
            _model("video", types.ModelPrice(input_mtok=d(1), output_mtok=d(1), input_video_mtok=d(1))),
            _model("searches", types.ModelPrice(input_mtok=d(1), output_mtok=d(2), web_searches_kcount=d(10))),
            _model("second-fine", types.ModelPrice(input_mtok=d(2), output_mtok=d(2)), "fine-1"),
        ]
    )
    data_snapshot.set_custom_snapshot(snapshot)
    try:
        read = read_catalog("acme", NOW)
    finally:
        data_snapshot.set_custom_snapshot(None)

    assert [m.model for m in read.models] == ["fine", "fine-1", "searches", "second-fine"]
    skipped = {s["model"]: s["reason"] for s in read.skipped}
    assert skipped["too-precise"] == "input_mtok 1E-7 does not fit numeric(12,6) exactly"
    assert "1000000" in skipped["too-big"] and "1.2345678" in skipped["tier-too-precise"]
    assert skipped["no-input"] == "no input price" and "input_video_mtok" in skipped["video"]
    # an alias two models claim goes where genai-prices itself prices it
    assert read.models[1].prices["input_usd_per_mtok"] == "0.000001"
    assert set(skipped) == {"too-precise", "too-big", "tier-too-precise", "no-input", "video"}


def test_every_current_openai_and_anthropic_price_fits_exactly():
    """So the skip above never bites today's catalog: every price read is written as it is."""
    for provider in ("openai", "anthropic"):
        assert not [s for s in read_catalog(provider, NOW).skipped if "numeric" in s["reason"]]


# ---- the pricing proof ----------------------------------------------------------------------

# models whose prices exercise every part of pricing: tiers (input, output, cache read and writes),
# cache writes 5m/1h, audio and image input with cached parts, audio and image output
INTERESTING = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("anthropic", "claude-haiku-5-5"),
    ("anthropic", "claude-opus-4-1"),
    ("openai", "gpt-5.4"),
    ("openai", "gpt-6-rosalind"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-realtime"),
    ("openai", "gpt-4o-realtime-preview"),
    ("openai", "gpt-image-1.5"),
    ("openai", "gpt-4o-audio-preview"),
    ("openai", "o3"),
    ("openai", "text-embedding-3-small"),
]

leaf = st.one_of(st.just(0), st.integers(0, 2_000), st.integers(0, 150_000))


@st.composite
def token_mixes(draw: st.DrawFn) -> TokenCounts:
    """Consistent counts, built from disjoint parts: each detail is a part of its totals."""
    text, read_text, read_audio, read_image = draw(leaf), draw(leaf), draw(leaf), draw(leaf)
    write_5m, write_1h, audio, image = draw(leaf), draw(leaf), draw(leaf), draw(leaf)
    out_text, reasoning, out_audio, out_image = draw(leaf), draw(leaf), draw(leaf), draw(leaf)
    cache_read = read_text + read_audio + read_image
    cache_write = write_5m + write_1h
    return TokenCounts(
        input=text + cache_read + cache_write + audio + image,
        output=out_text + reasoning + out_audio + out_image,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=write_1h,
        input_audio=read_audio + audio,
        cache_audio_read=read_audio,
        input_image=read_image + image,
        cache_image_read=read_image,
        reasoning=reasoning,
        output_audio=out_audio,
        output_image=out_image,
    )


def genai_total(provider: str, model: str, counts: TokenCounts) -> Decimal:
    # every usage key explicitly, zeros included: genai-prices needs them to split overlapping types
    usage = genai_prices.Usage(**{GENAI_USAGE_KEYS[name]: count for name, count in counts.as_dict().items()})
    return genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=NOW).total_price


async def test_a_synced_row_prices_any_usage_exactly_as_genai_prices_does(pool):
    await sync_prices(pool, ["openai", "anthropic"])
    snapshot = await catalog.load(pool)
    synced = {
        (r["provider"], r["model"])
        for r in await pool.fetch("SELECT provider, model FROM model_prices WHERE synced_prices IS NOT NULL")
    }
    assert set(INTERESTING) <= synced
    tiered = {key for key in INTERESTING if snapshot.prices[key[1]][key[0]].tiers}
    assert {("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5.4")} <= tiered
    audio_image = [key for key in INTERESTING if snapshot.prices[key[1]][key[0]].cache_image_read_usd_per_mtok]
    assert ("openai", "gpt-realtime") in audio_image

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.sampled_from(INTERESTING), st.sampled_from(sorted(synced))), token_mixes())
    def same_cost(key: tuple[str, str], counts: TokenCounts) -> None:
        provider, model = key
        ours = pricing.cost(snapshot.prices[model][provider], counts)
        theirs = genai_total(provider, model, counts)
        assert ours == theirs, f"{provider}/{model} {counts}: pricing.cost {ours} != genai-prices {theirs}"

    same_cost()


async def test_the_proof_is_not_vacuous_a_tier_and_a_cached_read_change_the_cost(pool):
    """The mixes cross tiers and the cached parts are priced apart: check two by hand."""
    await sync_prices(pool, ["anthropic"])
    sonnet = (await catalog.load(pool)).prices["claude-sonnet-4-5"]["anthropic"]
    below = TokenCounts(input=200_000, output=1_000, cache_read=150_000, cache_write=10_000, cache_write_1h=4_000)
    above = TokenCounts(input=200_001, output=1_000, cache_read=150_000, cache_write=10_000, cache_write_1h=4_000)
    p = catalog_model("anthropic", "claude-sonnet-4-5").get_prices(NOW)

    def by_hand(counts: TokenCounts, tier: int) -> Decimal:
        def price(value: types.TieredPrices) -> Decimal:
            return value.base if tier < 0 else value.tiers[tier].price

        plain = counts.input - counts.cache_read - counts.cache_write
        return (
            plain * price(p.input_mtok)
            + counts.cache_read * price(p.cache_read_mtok)
            + (counts.cache_write - counts.cache_write_1h) * price(p.cache_write_mtok)
            + counts.cache_write_1h * price(p.cache_write_1h_mtok)
            + counts.output * price(p.output_mtok)
        ) / 1_000_000

    assert pricing.cost(sonnet, below) == by_hand(below, -1) == genai_total("anthropic", "claude-sonnet-4-5", below)
    assert pricing.cost(sonnet, above) == by_hand(above, 0) == genai_total("anthropic", "claude-sonnet-4-5", above)
    assert by_hand(above, 0) > by_hand(below, -1) * 2 - Decimal("0.01")


async def test_the_seeds_claude_rows_price_cache_reads_and_writes_as_genai_prices_does(pool):
    """Migration 0014: the seed's Claude 3 rows, at every provider, price any usage like the
    catalog's model their dated name resolves to (cache writes were plain input before)."""
    snapshot = await catalog.load(pool)
    seeded = [
        (provider, model)
        for model, by_provider in snapshot.prices.items()
        if model.startswith("claude-3-")
        for provider in by_provider
    ]
    assert {provider for provider, _ in seeded} == {"anthropic", "openrouter", "demo"} and len(seeded) == 9

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(seeded), token_mixes())
    def same_cost(key: tuple[str, str], counts: TokenCounts) -> None:
        provider, model = key
        text_only = replace(counts, input_audio=0, cache_audio_read=0, input_image=0, cache_image_read=0)
        text_only = replace(
            text_only,
            input=counts.input
            - counts.input_audio
            - counts.input_image
            + counts.cache_audio_read
            + counts.cache_image_read,
            output_audio=0,
            output_image=0,
            output=counts.output - counts.output_audio - counts.output_image,
        )
        assert pricing.cost(snapshot.prices[model][provider], text_only) == genai_total("anthropic", model, text_only)

    same_cost()


# --- models whose every call costs a fee beside its tokens (issue 17, item 3) ---------------------

SEARCH_MODELS = ["gpt-4o-search-preview", "gpt-4o-mini-search-preview", "gpt-5-search-api", "o3-deep-research"]


def test_the_sync_skips_the_models_whose_every_call_costs_a_fee_it_cannot_charge():
    """They were synced at token prices only: about 270 times less than the provider charges."""
    read = read_catalog("openai")
    synced = {m.model for m in read.models}
    skipped = {entry["model"]: entry["reason"] for entry in read.skipped}

    for model in ("gpt-4o-search-preview", "gpt-5-search-api", "o3-deep-research"):
        assert model not in synced
        assert "fee per call" in skipped[model]
    assert "gpt-4o" in synced and "gpt-4o-mini" in synced  # their searches are tools, refused per request
    openrouter = read_catalog("openrouter")
    assert not any(per_call_fees.per_call_fee(m.model) for m in openrouter.models)
    assert "openai/gpt-4o-mini-search-preview" in {entry["model"] for entry in openrouter.skipped}


def test_every_model_genai_prices_gives_a_per_call_price_is_skipped():
    """requests_kcount (a fee per request): this gateway charges tokens only, so never serves them."""
    for provider in data_snapshot.get_snapshot().providers:
        now = datetime.now(UTC)
        per_request = {m.id for m in provider.models if m.get_prices(now).requests_kcount is not None}
        if not per_request:
            continue
        read = read_catalog(provider.id)
        assert not per_request & {m.model for m in read.models}, provider.id


@pytest.mark.parametrize("model", [*SEARCH_MODELS, "openai/gpt-4o-search-preview", "perplexity/sonar-pro", "x:online"])
async def test_a_per_call_fee_model_priced_by_hand_is_never_routed_to(pool, model):
    await prices.add_price(pool, "openai", model, "2.5", "10")

    snapshot = await catalog.load(pool)

    assert model not in snapshot.prices


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abcdeilnoprstuvw-/:.45AEIOSR", min_size=1, max_size=40)
    | st.sampled_from(["sonar/x", "a/sonar", "SONAR-pro", "gpt-4o-SEARCH-preview", "m:online", "m:onlinex"])
)
def test_only_the_named_fee_patterns_are_refused(name):
    """Ordinary names are served: the rule names search, deep-research, sonar and :online models only."""
    lowered = name.lower()
    expected = (
        "search-preview" in lowered
        or "search-api" in lowered
        or "deep-research" in lowered
        or lowered.endswith(":online")
        or any(part == "sonar" or part.startswith("sonar-") for part in lowered.split("/"))
    )
    assert per_call_fees.per_call_fee(name) == expected

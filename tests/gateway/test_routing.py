"""Which providers serve a request, in which order, and the most it can cost."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ledger.gateway.byok import ProviderKey
from ledger.gateway.catalog import CatalogSnapshot, PowerLevel
from ledger.gateway.pricing import ModelPrice
from ledger.gateway.routing import Tariff, plan_routes, reply_cap
from ledger.settings import ProviderConfig


def price(provider: str, model: str, input_price: str, output_price: str, max_output: int = 4096) -> ModelPrice:
    return ModelPrice(provider, model, Decimal(input_price), Decimal(output_price), 128000, max_output)


SNAPSHOT = CatalogSnapshot(
    power_levels={},
    prices={
        "gpt-4": {
            "openai": price("openai", "gpt-4", "30", "60", 8192),
            "openrouter": price("openrouter", "gpt-4", "30", "60", 8192),
            "azure": price("azure", "gpt-4", "40", "80", 1000),
        },
        "claude": {"anthropic": price("anthropic", "claude", "3", "15")},
    },
)
CONFIGURED = {name: ProviderConfig(base_url=f"http://{name}.test/v1") for name in ("openai", "openrouter", "azure")}
BALANCED = PowerLevel("balanced", Decimal(1), ("openai", "anthropic", "openrouter"))
ECO = PowerLevel("eco", Decimal("0.7"), ("openrouter", "together", "deepinfra"))


def test_preferred_providers_come_first_in_the_levels_order_then_the_others():
    assert [r.provider for r in plan_routes(SNAPSHOT, CONFIGURED, "gpt-4", BALANCED, {})] == [
        "openai",
        "openrouter",
        "azure",
    ]
    assert [r.provider for r in plan_routes(SNAPSHOT, CONFIGURED, "gpt-4", ECO, {})] == [
        "openrouter",
        "azure",
        "openai",
    ]


def test_only_configured_providers_that_price_the_model_serve_it():
    assert plan_routes(SNAPSHOT, CONFIGURED, "claude", BALANCED, {}) == []
    assert plan_routes(SNAPSHOT, CONFIGURED, "unknown", BALANCED, {}) == []


def test_a_byok_key_marks_its_providers_route():
    key = ProviderKey(uuid.uuid4(), "openrouter", "sk-own")

    routes = plan_routes(SNAPSHOT, CONFIGURED, "gpt-4", BALANCED, {"openrouter": key})

    assert [(r.provider, r.is_byok) for r in routes] == [("openai", False), ("openrouter", True), ("azure", False)]


def test_the_hold_is_the_dearest_route_with_the_longest_reply_it_allows():
    routes = plan_routes(SNAPSHOT, CONFIGURED, "gpt-4", BALANCED, {})
    tariff = Tariff(Decimal("0.10"), Decimal(1), Decimal(0))

    # openai/openrouter: 10 x $30 + 8192 x $60 per 1M = $0.49182; azure: 10 x $40 + 1000 x $80 = $0.0804
    assert tariff.most_it_can_cost(routes, 10, lambda route: reply_cap(route, None)) == Decimal("4.918200")
    # max_tokens 100: openai 10 x $30 + 100 x $60 = $0.0063; azure 10 x $40 + 100 x $80 = $0.0084, the dearest
    assert tariff.most_it_can_cost(routes, 10, lambda route: reply_cap(route, 100)) == Decimal("0.084000")


def test_byok_routes_cost_only_the_fee_ratio():
    key = ProviderKey(uuid.uuid4(), "openai", "sk-own")
    (route,) = [r for r in plan_routes(SNAPSHOT, CONFIGURED, "gpt-4", BALANCED, {"openai": key}) if r.is_byok]

    assert Tariff(Decimal("0.10"), Decimal(1), Decimal(0)).credits(route, Decimal("0.06")) == 0
    assert Tariff(Decimal("0.10"), Decimal(1), Decimal("0.05")).credits(route, Decimal("0.06")) == Decimal("0.03")

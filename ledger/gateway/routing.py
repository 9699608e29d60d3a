"""Which providers may serve a request, in which order, with whose key, at what price.

Order: the power level's preferred providers that are configured and price the model, in the
level's order; then any other configured provider that prices the model (by name), so a request
is served rather than refused when the preferred ones cannot serve it. A provider the user holds
an active BYOK key for is called with that key instead of the platform's.

A cheaper level never buys another level's service: a fallback provider (one outside the
request's level's preferred list) is charged at no less than its own level's multiplier, the
lowest multiplier among the levels that prefer it (a provider no level prefers is charged at
the request's level). The hold is computed with the same multipliers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal

from ledger.gateway.byok import ProviderKey
from ledger.gateway.catalog import CatalogSnapshot, PowerLevel
from ledger.gateway.pricing import TOKEN_TYPES, ModelPrice, TokenCounts, cost, credits_for, most_cost
from ledger.settings import ProviderConfig


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    config: ProviderConfig
    price: ModelPrice
    byok_key: ProviderKey | None
    # the least multiplier this provider is sold at (its own level's), when it is a fallback
    multiplier_floor: Decimal | None = None

    @property
    def is_byok(self) -> bool:
        return self.byok_key is not None


def plan_routes(
    snapshot: CatalogSnapshot,
    providers: dict[str, ProviderConfig],
    model: str,
    power_level: PowerLevel,
    byok_keys: dict[str, ProviderKey],
    api: str = "openai",
) -> list[Route]:
    """`api`: the API the request speaks; only providers that speak it natively serve it."""
    priced = snapshot.prices.get(model, {})
    servable = [name for name in providers if name in priced and providers[name].api == api]
    preferred = [name for name in power_level.preferred_providers if name in servable]
    others = sorted(name for name in servable if name not in preferred)

    def own_level(name: str) -> Decimal | None:
        owners = [
            Decimal(level.cost_multiplier)
            for level in snapshot.power_levels.values()
            if name in level.preferred_providers
        ]
        return min(owners) if owners else None

    return [Route(name, providers[name], priced[name], byok_keys.get(name)) for name in preferred] + [
        Route(name, providers[name], priced[name], byok_keys.get(name), own_level(name)) for name in others
    ]


@dataclass(frozen=True, slots=True)
class Tariff:
    """How one request's credits follow from its usage."""

    usd_per_credit: Decimal
    multiplier: Decimal
    byok_fee_ratio: Decimal

    def usd(self, route: Route, counts: TokenCounts) -> Decimal:
        return cost(route.price, counts)

    def multiplier_for(self, route: Route) -> Decimal:
        if route.multiplier_floor is None:
            return self.multiplier
        return max(self.multiplier, route.multiplier_floor)

    def credits(self, route: Route, usd: Decimal) -> Decimal:
        billable = usd * self.byok_fee_ratio if route.is_byok else usd
        return credits_for(billable, usd_per_credit=self.usd_per_credit, multiplier=self.multiplier_for(route))

    def most_it_can_cost(
        self,
        routes: list[Route],
        prompt_tokens: int,
        completion_tokens: Callable[[Route], int],
        prompts: int = 1,
        token_types: Collection[str] = TOKEN_TYPES,
    ) -> Decimal:
        """The hold: the dearest route with the most output tokens the request lets it generate
        (`completion_tokens(route)`), and the longest prompt it accepts (its context window for
        each of the request's `prompts` separate prompts), every token at the dearest price of its
        direction among the `token_types` the request's API can report."""
        worst = Decimal(0)
        for route in routes:
            prompt = prompt_tokens_on(route, prompt_tokens, prompts)
            worst = max(
                worst, self.credits(route, most_cost(route.price, prompt, completion_tokens(route), token_types))
            )
        return worst


def prompt_tokens_on(route: Route, prompt_tokens: int, prompts: int = 1) -> int:
    """The most prompt tokens `route` can count: the request's bound, never above its context
    window for each of the request's `prompts` separate prompts."""
    return min(prompt_tokens, prompts * route.price.context_window)


def reply_cap(route: Route, max_tokens: int | None) -> int:
    """The max_tokens sent to this route: the client's, never above the model's output limit, and
    the model's limit when the client sent none (so the hold and the upstream agree)."""
    limit = route.price.max_output_tokens
    return limit if max_tokens is None else min(max_tokens, limit)

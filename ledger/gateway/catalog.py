"""Model prices and power levels, read from the database and cached for a few seconds.

Both are small tables operators edit by hand; reading them on every request would add a round
trip to the hot path, so a copy is kept for `catalog_ttl_seconds` and then read again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.gateway.model_limits import limits_of
from ledger.gateway.per_call_fees import per_call_fee
from ledger.gateway.pricing import ModelPrice, Tier


@dataclass(frozen=True, slots=True)
class PowerLevel:
    name: str
    cost_multiplier: Decimal
    preferred_providers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    power_levels: dict[str, PowerLevel]
    # model -> provider -> price
    prices: dict[str, dict[str, ModelPrice]]


@dataclass
class Catalog:
    ttl_seconds: float
    _snapshot: CatalogSnapshot | None = None
    _loaded_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def invalidate(self) -> None:
        self._snapshot = None

    async def get(self, db: Executor) -> CatalogSnapshot:
        if self._snapshot is None or time.monotonic() - self._loaded_at > self.ttl_seconds:
            async with self._lock:
                if self._snapshot is None or time.monotonic() - self._loaded_at > self.ttl_seconds:
                    self._snapshot = await load(db)
                    self._loaded_at = time.monotonic()
        return self._snapshot


def read_tiers(text: str | None) -> dict[str, tuple[Tier, ...]]:
    """model_prices.tiers ({"input": [{"above": 200000, "usd_per_mtok": "6"}], ...}) as Tiers, ascending."""
    raw = json.loads(text) if text else {}
    return {
        name: tuple(
            sorted((Tier(int(t["above"]), Decimal(str(t["usd_per_mtok"]))) for t in tiers), key=lambda t: t.above)
        )
        for name, tiers in raw.items()
    }


async def load(db: Executor) -> CatalogSnapshot:
    levels = await db.fetch(query("active_power_levels"))
    rows = await db.fetch(query("active_model_prices"))
    prices: dict[str, dict[str, ModelPrice]] = {}
    for row in rows:
        if per_call_fee(row["model"]):
            continue  # a fee per call it cannot charge: never routed to, however it was priced
        fields = dict(row)
        fields["tiers"] = read_tiers(fields["tiers"])
        if (known := limits_of(row["model"])) is not None:
            # never above the model's real limit, whatever a row says (rows synced before the
            # limits were known said 32,768 for every model): the provider refuses more
            fields["max_output_tokens"] = min(fields["max_output_tokens"], known.max_output_tokens)
        prices.setdefault(row["model"], {})[row["provider"]] = ModelPrice(**fields)
    return CatalogSnapshot(
        power_levels={
            r["power_level"]: PowerLevel(r["power_level"], r["cost_multiplier"], tuple(r["preferred_providers"]))
            for r in levels
        },
        prices=prices,
    )

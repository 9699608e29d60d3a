"""Model prices and power levels, read from the database and cached for a few seconds.

Both are small tables operators edit by hand; reading them on every request would add a round
trip to the hot path, so a copy is kept for `catalog_ttl_seconds` and then read again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.db.executor import Executor
from ledger.gateway.pricing import ModelPrice


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


async def load(db: Executor) -> CatalogSnapshot:
    levels = await db.fetch(
        "SELECT power_level, cost_multiplier, preferred_providers FROM power_level_configs WHERE is_active"
    )
    rows = await db.fetch(
        "SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens"
        " FROM model_prices WHERE is_active"
    )
    prices: dict[str, dict[str, ModelPrice]] = {}
    for row in rows:
        prices.setdefault(row["model"], {})[row["provider"]] = ModelPrice(**dict(row))
    return CatalogSnapshot(
        power_levels={
            r["power_level"]: PowerLevel(r["power_level"], r["cost_multiplier"], tuple(r["preferred_providers"]))
            for r in levels
        },
        prices=prices,
    )

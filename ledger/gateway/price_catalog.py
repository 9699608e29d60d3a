"""The price catalog genai-prices ships, read into model_prices rows, and the sync that keeps them
current (`ledger prices sync`, POST /admin/model-prices/sync, the embedded default's startup).

What is read, per model of a catalog provider (openai, anthropic, ...):
- the prices in force now (a model's conditional prices: the last one whose start date has come);
- each price key of pricing.GENAI_PRICE_KEYS into its column: a plain price as it is, a tiered one
  as its base in the column and its tiers in `tiers` ({"input": [{"above": 200000,
  "usd_per_mtok": "6"}], ...});
- price_variants are not read: they price service tiers (flex, priority), batch processing and
  fast mode, which the adapters refuse or never ask for, so the standard prices are the ones owed;
- web_searches_kcount and storage_searches_kcount are left out: the adapters refuse the tools
  (web search, file search) they price;
- a model pricing anything else (audio hours, characters, a fee per request: requests_kcount, ...) is
  skipped: this gateway cannot meter it, and serving it would bill less than the provider charges;
  so is a model whose every call costs a fee the catalog does not carry (search and deep-research
  models: ledger/gateway/per_call_fees.py). So is a model with no input price, or
  one with a price numeric(12,6) cannot hold exactly (never rounded: skipped with the reason).
  A model with an input price and none for output (the embedding models) produces no output
  tokens; its output price is 0, which is what genai-prices charges for output it has no price for.

Names: the model's id and each exact (`equals`) alias of its match clause, each its own row, kept
only where genai-prices itself prices that name as this model (so an alias two models claim goes
to the one genai-prices picks). Prefix and pattern matches are not names: a client names a row.

The catalog has no output limit: max_output_tokens is the model's real one from LiteLLM's table
(ledger/gateway/model_limits.py), else the conservative MAX_OUTPUT_TOKENS (a guess above a model's
real limit is refused upstream); never above the context window, which is the catalog's, else
CONTEXT_WINDOW.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg
import genai_prices
from asyncpg.pool import PoolConnectionProxy
from genai_prices import data_snapshot, types

from ledger.db.queries import query
from ledger.errors import InvalidArgument
from ledger.gateway import per_call_fees
from ledger.gateway.model_limits import limits_of
from ledger.gateway.per_call_fees import per_call_fee
from ledger.gateway.prices import PRICE_ORDER
from ledger.gateway.pricing import GENAI_PRICE_KEYS, PRICE_COLUMNS

log = logging.getLogger("ledger.prices")

CONTEXT_WINDOW = 128_000  # the table's own default, for a model the catalog gives none
# for a model LiteLLM's table does not list: every current chat model generates at least this many
MAX_OUTPUT_TOKENS = 4_096
# tools the adapters refuse: their prices are never owed through this gateway
UNUSED_PRICE_KEYS = frozenset({"web_searches_kcount", "storage_searches_kcount"})
TYPE_OF_PRICE_KEY = {key: name for name, key in GENAI_PRICE_KEYS.items()}
# numeric(12,6): 6 places, below 10^6
MOST_PLACES = 6
PRICE_LIMIT = Decimal(10) ** 6
SOURCE = f"genai-prices {genai_prices.__version__}"
DEFAULT_SOURCES = ("openai", "anthropic")
# A constant key for pg_advisory_xact_lock: one sync at a time (two replicas starting at once
# would otherwise both insert the same rows).
SYNC_LOCK = 7_310_451_021

Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy


def plain(value: Decimal) -> str:
    """A price as a plain decimal string with no trailing zeros: '2.5', '10', '0'."""
    return format(value.normalize(), "f") if value else "0"


def price_set(prices: Mapping[str, Any], tiers: Mapping[str, Any]) -> dict[str, Any]:
    """Prices in one comparable form, the form synced_prices holds: every price column (a plain
    decimal string, or None) and the tiers, ascending, their prices plain."""
    return {
        **{
            column: None if prices.get(column) is None else plain(Decimal(str(prices[column])))
            for column in PRICE_COLUMNS.values()
        },
        "tiers": {
            name: [
                {"above": int(t["above"]), "usd_per_mtok": plain(Decimal(str(t["usd_per_mtok"])))}
                for t in sorted(tiers[name], key=lambda t: int(t["above"]))
            ]
            for name in sorted(tiers)
            if tiers[name]
        },
    }


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One row the catalog gives: a name at a provider and its prices (price_set's form)."""

    model: str
    prices: dict[str, Any]
    context_window: int

    @property
    def max_output_tokens(self) -> int:
        known = limits_of(self.model)
        return min(MAX_OUTPUT_TOKENS if known is None else known.max_output_tokens, self.context_window)


@dataclass(frozen=True, slots=True)
class CatalogRead:
    models: list[CatalogModel]
    skipped: list[dict[str, str]]  # {"model", "reason"}


def _fits(price: Decimal) -> bool:
    exponent = price.normalize().as_tuple().exponent  # 1.5000000 fits: trailing zeros are no places
    return price.is_finite() and 0 <= price < PRICE_LIMIT and isinstance(exponent, int) and exponent >= -MOST_PLACES


def _equals_aliases(clause: object) -> Iterator[str]:
    """The exact names of a match clause (an `or` of them, at any depth)."""
    if isinstance(clause, types.ClauseEquals):
        yield clause.equals
    elif isinstance(clause, types.ClauseOr):
        for inner in clause.or_:
            yield from _equals_aliases(inner)


def _prices_of(model: types.ModelInfo, now: datetime) -> tuple[dict[str, Any] | None, str]:
    """The model's prices in force at `now` in price_set's form, or None and why not."""
    standard = model.get_prices(now)
    given = {key: value for key, value in vars(standard).items() if value is not None and not key.startswith("_")}
    unmetered = sorted(set(given) - set(TYPE_OF_PRICE_KEY) - UNUSED_PRICE_KEYS)
    if unmetered:
        return None, f"prices {', '.join(unmetered)}, which this gateway does not meter"
    if "input_mtok" not in given:
        return None, "no input price"
    columns: dict[str, Decimal] = {}
    tiers: dict[str, list[dict[str, Any]]] = {}
    for key, value in given.items():
        if key in UNUSED_PRICE_KEYS:
            continue
        name = TYPE_OF_PRICE_KEY[key]
        if isinstance(value, types.TieredPrices):
            columns[PRICE_COLUMNS[name]] = value.base
            tiers[name] = [{"above": t.start, "usd_per_mtok": t.price} for t in value.tiers]
            every = [value.base, *(t.price for t in value.tiers)]
        else:
            columns[PRICE_COLUMNS[name]] = value
            every = [value]
        for price in every:
            if not _fits(price):
                return None, f"{key} {price} does not fit numeric(12,6) exactly"
    columns.setdefault(PRICE_COLUMNS["output"], Decimal(0))
    return price_set(columns, tiers), ""


def read_catalog(catalog_provider: str, now: datetime | None = None) -> CatalogRead:
    """Every row genai-prices' catalog gives for `catalog_provider`, and the models skipped."""
    now = now or datetime.now(UTC)
    provider = next((p for p in data_snapshot.get_snapshot().providers if p.id == catalog_provider), None)
    if provider is None:
        raise InvalidArgument(f"genai-prices has no provider {catalog_provider!r}")
    models: list[CatalogModel] = []
    skipped: list[dict[str, str]] = []
    named: set[str] = set()
    for info in provider.models:
        prices, why = _prices_of(info, now)
        if prices is not None and per_call_fee(info.id):
            prices, why = None, per_call_fees.REASON
        if prices is None:
            skipped.append({"model": info.id, "reason": why})
            continue
        for name in dict.fromkeys([info.id, *_equals_aliases(info.match)]):
            if name in named:
                continue
            if per_call_fee(name):
                skipped.append({"model": name, "reason": per_call_fees.REASON})
                continue
            if provider.find_model(name) is not info:
                skipped.append({"model": name, "reason": f"genai-prices does not price this name as {info.id}"})
                continue
            named.add(name)
            models.append(CatalogModel(name, prices, info.context_window or CONTEXT_WINDOW))
    return CatalogRead(models, skipped)


@dataclass(frozen=True, slots=True)
class Source:
    """A catalog provider synced into a gateway provider: `openai`, or `openai:demo`."""

    catalog: str
    provider: str

    @classmethod
    def parse(cls, text: str) -> Source:
        catalog, colon, provider = (part.strip() for part in text.partition(":"))
        provider = provider if colon else catalog
        if not catalog or not provider:
            raise InvalidArgument(f"a source is CATALOG_PROVIDER or CATALOG_PROVIDER:NAME, got {text!r}")
        return cls(catalog, provider)

    def __str__(self) -> str:
        return self.catalog if self.catalog == self.provider else f"{self.catalog}:{self.provider}"


@dataclass
class SyncReport:
    """What a sync changed (or, on a dry run, would change)."""

    synced_from: str
    dry_run: bool
    force: bool
    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "synced_from": self.synced_from,
            "dry_run": self.dry_run,
            "force": self.force,
            "added": self.added,
            "updated": self.updated,
            "kept": self.kept,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
        }

    def counts(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.kept)} kept, "
            f"{len(self.skipped)} skipped, {self.unchanged} unchanged"
        )


def _stored_set(row: Mapping[str, Any]) -> dict[str, Any]:
    return price_set(row, json.loads(row["tiers"]) if row["tiers"] else {})


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {key: [old[key], new[key]] for key in new if old.get(key) != new[key]}


def _values(prices: Mapping[str, Any]) -> list[Any]:
    columns = [None if prices[c] is None else Decimal(prices[c]) for c in PRICE_ORDER]
    return [*columns, json.dumps(prices["tiers"])]


async def _sync_source(
    conn: Conn, source: Source, read: CatalogRead, report: SyncReport, done: set[tuple[str, str]]
) -> None:
    report.skipped += [{"source": str(source), **entry} for entry in read.skipped]
    stored = {row["model"]: row for row in await conn.fetch(query("model_prices_to_sync"), source.provider)}
    inserts: list[list[Any]] = []
    updates: list[list[Any]] = []
    for entry in read.models:
        where = {"provider": source.provider, "model": entry.model}
        if (source.provider, entry.model) in done:
            report.skipped.append({"source": str(source), "model": entry.model, "reason": "synced from another source"})
            continue
        done.add((source.provider, entry.model))
        synced = json.dumps(entry.prices)
        row = stored.get(entry.model)
        if row is None:
            inserts.append(
                [
                    source.provider,
                    entry.model,
                    *_values(entry.prices),
                    entry.context_window,
                    entry.max_output_tokens,
                    synced,
                    report.synced_from,
                ]
            )
            report.added.append({**where, **{k: v for k, v in entry.prices.items() if v}})
            continue
        current = _stored_set(dict(row))
        if current == entry.prices:
            report.unchanged += 1
            continue
        last_synced = None if row["synced_prices"] is None else json.loads(row["synced_prices"])
        if not report.force:
            if last_synced is None:
                report.kept.append({**where, "reason": "not from the catalog (seeded or added by an operator)"})
                continue
            if price_set(last_synced, last_synced.get("tiers", {})) != current:
                report.kept.append({**where, "reason": "changed by an operator since the last sync"})
                continue
        updates.append([source.provider, entry.model, *_values(entry.prices), synced, report.synced_from])
        report.updated.append({**where, "changes": _difference(current, entry.prices)})
    if not report.dry_run:
        if inserts:
            await conn.executemany(query("insert_synced_model_price"), inserts)
        if updates:
            await conn.executemany(query("update_synced_model_price"), updates)


async def sync_prices(
    db: asyncpg.Pool | Conn, sources: Sequence[str], *, force: bool = False, dry_run: bool = False
) -> SyncReport:
    """Brings `sources`' prices (`openai`, `openai:demo`) from genai-prices into model_prices, in
    one transaction:
    - a model with no row gets one (its synced_prices the prices written);
    - a row whose prices are what the last sync wrote gets the catalog's prices, if they differ;
    - a row an operator changed since (prices no longer synced_prices), or never synced (the
      seed's, an operator's), is kept, unless `force`;
    - context_window, max_output_tokens and is_active of an existing row are never touched.
    A dry run reports what would change and writes nothing."""
    parsed = list(dict.fromkeys(Source.parse(s) for s in sources))
    if not parsed:
        raise InvalidArgument("nothing to sync: name at least one provider")
    now = datetime.now(UTC)
    reads = [(source, read_catalog(source.catalog, now)) for source in parsed]  # unknown ones refused first
    report = SyncReport(SOURCE, dry_run, force)
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            await _sync(conn, reads, report)
    else:
        await _sync(db, reads, report)
    return report


async def _sync(conn: Conn, reads: list[tuple[Source, CatalogRead]], report: SyncReport) -> None:
    done: set[tuple[str, str]] = set()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SYNC_LOCK)
        for source, read in reads:
            await _sync_source(conn, source, read, report, done)


async def sync_at_start(db: asyncpg.Pool, sources: Sequence[str]) -> None:
    """The embedded default's catalog, brought current as the service starts (never forced, so the
    seed's rows and an operator's keep their prices): one log line with the counts. A database
    that refuses is logged, not fatal: the service still serves the prices it has."""
    try:
        report = await sync_prices(db, sources)
    except (asyncpg.PostgresError, OSError):
        log.exception("price catalog sync at start failed; serving the prices already in model_prices")
        return
    log.info("price catalog %s synced into %s: %s", report.synced_from, ", ".join(sources), report.counts())

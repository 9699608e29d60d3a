"""Prometheus metrics, one registry per app, counted in memory as requests pass.

Money appears here as floats because Prometheus only has floats: these are signals for graphs
and alerts, never a source of truth; the ledger's NUMERIC columns are.
"""

from __future__ import annotations

import math
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_llm_requests", "Metered LLM requests", ["model", "provider", "status"], registry=self.registry
        )
        self.credits_debited = Counter(
            "ledger_credits_debited", "Credits charged for LLM requests", registry=self.registry
        )
        self.usage_anomalies = Counter(
            "ledger_usage_anomalies",
            "Upstream answers whose reported usage (or stream) was outside the request's bounds",
            ["provider"],
            registry=self.registry,
        )
        self.insufficient = Counter("ledger_insufficient_credits", "Requests refused with 402", registry=self.registry)
        self.control_refusals = Counter(
            "ledger_control_refusals",
            "Requests refused by a spend control before any upstream call",
            ["control"],  # budget, rate_limit, key_restriction
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "ledger_upstream_latency_seconds",
            "Time to an upstream's answer (end of stream for streams)",
            ["provider"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.webhook_events = Counter(
            "ledger_webhook_events", "Stripe webhook events", ["type", "result"], registry=self.registry
        )
        self.pool_connections = Gauge(
            "ledger_db_pool_connections", "asyncpg pool connections", ["state"], registry=self.registry
        )
        self.holds_open = Gauge("ledger_holds_open", "Credit holds open", registry=self.registry)
        self.credits_held = Gauge("ledger_credits_held", "Credits held by open holds", registry=self.registry)
        # when the database's figures (holds_open, credits_held) were last read (time.monotonic())
        self.database_read_at = -math.inf

    def request_done(
        self, model: str, provider: str | None, status: int, credits: Decimal, latency_seconds: float | None
    ) -> None:
        self.requests.labels(model, provider or "none", str(status)).inc()
        if credits:
            self.credits_debited.inc(float(credits))
        if provider and latency_seconds is not None:
            self.upstream_latency.labels(provider).observe(latency_seconds)

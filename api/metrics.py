"""Prometheus metrics at /metrics (the counters themselves are ledger/metrics.py's)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api.services import services
from ledger.metrics import Metrics
from ledger.money.holds import open_holds


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = services(request).metrics
    pool = services(request).pool
    metrics.pool_connections.labels("total").set(pool.get_size())
    metrics.pool_connections.labels("idle").set(pool.get_idle_size())
    metrics.pool_connections.labels("used").set(pool.get_size() - pool.get_idle_size())
    held = await open_holds(pool)
    metrics.holds_open.set(held.holds)
    metrics.credits_held.set(float(held.credits))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""Prometheus metrics at /metrics (the counters themselves are ledger/metrics.py's).

With LEDGER_METRICS_TOKEN set, a scrape must send it as a Bearer token. The figures read from the
database are reused for LEDGER_METRICS_CACHE_SECONDS, so scrapes cannot load the database."""

from __future__ import annotations

import hmac
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.services import services
from ledger.money.holds import open_holds


def require_scrape_token(request: Request) -> None:
    configured = services(request).settings.metrics_token
    if configured is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given.encode(), configured.get_secret_value().encode()):
        raise ApiError(
            401,
            "/metrics needs the scrape token: send 'Authorization: Bearer <LEDGER_METRICS_TOKEN>'.",
            code="invalid_metrics_token",
        )


async def metrics_endpoint(request: Request) -> Response:
    require_scrape_token(request)
    found = services(request)
    metrics, pool = found.metrics, found.pool
    metrics.pool_connections.labels("total").set(pool.get_size())
    metrics.pool_connections.labels("idle").set(pool.get_idle_size())
    metrics.pool_connections.labels("used").set(pool.get_size() - pool.get_idle_size())
    now = time.monotonic()
    if now - metrics.database_read_at >= found.settings.metrics_cache_seconds:
        held = await open_holds(pool)
        metrics.holds_open.set(held.holds)
        metrics.credits_held.set(float(held.credits))
        metrics.database_read_at = now
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

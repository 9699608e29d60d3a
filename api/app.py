"""App factory; the lifespan opens the asyncpg pool and the shared httpx client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from api.errors import EXCEPTION_HANDLERS
from api.routes import health
from ledger.database import create_pool
from ledger.settings import Settings


def create_app(settings: Settings, database_url: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool(
            database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
        app.state.pool = pool
        app.state.http = http
        try:
            yield
        finally:
            await http.aclose()
            await pool.close()

    app = Starlette(
        routes=[
            Route("/healthz", health.healthz),
            Route("/readyz", health.readyz),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app

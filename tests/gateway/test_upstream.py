"""The upstream client (one aiohttp session): what a provider's answer can and cannot make it do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route as Path

from ledger.gateway.byok import ProviderKey
from ledger.gateway.pricing import ModelPrice
from ledger.gateway.routing import Route
from ledger.gateway.upstream import (
    COMPLETION_STATUSES,
    AllProvidersFailed,
    LostAfterSending,
    UpstreamResponse,
    is_retryable,
    open_first,
    open_session,
    timeouts,
)
from ledger.settings import ProviderConfig
from tests.fake_upstream import ServerThread

PRICE = ModelPrice("p", "gpt-4", Decimal(30), Decimal(60), 8192, 4096)


@pytest.fixture
def elsewhere() -> Iterator[tuple[ServerThread, list[dict[str, str]]]]:
    """A server on another port that records what reaches it."""
    seen: list[dict[str, str]] = []

    async def record(request: Request) -> Response:
        seen.append(dict(request.headers))
        return JSONResponse({"choices": []})

    server = ServerThread(Starlette(routes=[Path("/{path:path}", record, methods=["GET", "POST"])])).start()
    yield server, seen
    server.stop()


@pytest.fixture
def redirecting(elsewhere) -> Iterator[ServerThread]:
    target, _ = elsewhere

    async def redirect(_request: Request) -> Response:
        return RedirectResponse(f"{target.url}/v1/chat/completions", status_code=307)

    server = ServerThread(Starlette(routes=[Path("/v1/chat/completions", redirect, methods=["POST"])])).start()
    yield server
    server.stop()


async def first_answer(provider: ServerThread, api_key: str = "sk-platform-secret") -> UpstreamResponse:
    """The answer of the one provider at `provider`, to an empty chat request, on a fresh session."""
    route = Route("p", ProviderConfig(base_url=f"{provider.url}/v1", api_key=api_key), PRICE, None)
    session = open_session()
    try:
        chosen, response = await open_first(session, [route], lambda _: ("/chat/completions", b"{}"), stream=False)
    finally:
        await session.close()
    assert chosen is route
    return response


async def test_a_providers_redirect_is_never_followed_and_the_key_never_travels_on(redirecting, elsewhere):
    _, seen = elsewhere

    # a redirect is not a completion: the next provider would be tried (there is none here)
    with pytest.raises(AllProvidersFailed) as failed:
        await first_answer(redirecting)

    assert failed.value.status_code == 307
    assert seen == []


@pytest.fixture
def slow() -> Iterator[tuple[ServerThread, list[int]]]:
    """A provider that answers a second after it received the request."""
    seen: list[int] = []

    async def answer(_request: Request) -> Response:
        seen.append(1)
        await asyncio.sleep(1)
        return JSONResponse({"choices": []})

    server = ServerThread(Starlette(routes=[Path("/v1/chat/completions", answer, methods=["POST"])])).start()
    yield server, seen
    server.stop()


def route_to(url: str, timeout_s: float = 0.3) -> Route:
    return Route(
        "p", ProviderConfig(base_url=f"{url}/v1", api_key="sk-platform-secret", timeout_s=timeout_s), PRICE, None
    )


async def answer_of(routes: list[Route], **options: bool) -> tuple[Route, UpstreamResponse]:
    session = open_session()
    try:
        return await open_first(session, routes, lambda _: ("/chat/completions", b"{}"), stream=False, **options)
    finally:
        await session.close()


async def test_a_read_timeout_after_sending_ends_the_request_and_the_next_provider_is_never_called(slow, elsewhere):
    (provider, _), (backup, seen) = slow, elsewhere

    with pytest.raises(LostAfterSending) as lost:
        await answer_of([route_to(provider.url), route_to(backup.url)])

    assert lost.value.failure == "ReadTimeout" and seen == []


async def test_a_request_free_to_repeat_falls_over_after_a_read_timeout(slow, elsewhere):
    (provider, _), (backup, seen) = slow, elsewhere

    chosen, response = await answer_of([route_to(provider.url), route_to(backup.url)], free_to_repeat=True)

    assert chosen.config.base_url.startswith(backup.url) and response.status_code == 200 and len(seen) == 1


async def test_a_refused_connection_falls_over(elsewhere):
    backup, seen = elsewhere
    closed = ServerThread(Starlette()).start()
    closed.stop()  # nothing listens on its port any more

    chosen, _ = await answer_of([route_to(closed.url), route_to(backup.url)])

    assert chosen.config.base_url.startswith(backup.url) and len(seen) == 1


@pytest.fixture
def long_headers() -> Iterator[ServerThread]:
    """A provider whose answer carries a 20 KiB header and 200 headers (trace ids, cookies)."""

    async def answer(_request: Request) -> Response:
        headers = {"x-trace": "t" * 20_000, **{f"x-extra-{i}": str(i) for i in range(200)}}
        return JSONResponse({"choices": []}, headers=headers)

    server = ServerThread(Starlette(routes=[Path("/v1/chat/completions", answer, methods=["POST"])])).start()
    yield server
    server.stop()


async def test_an_answer_with_long_headers_is_read_like_any_other(long_headers):
    response = await first_answer(long_headers)

    assert response.status_code == 200 and response.content == b'{"choices":[]}'


@given(status=st.integers(min_value=100, max_value=599), byok=st.booleans())
def test_every_status_is_a_completion_a_fall_over_or_an_end_at_that_provider(status, byok):
    route = route_to("http://127.0.0.1:9")
    if byok:
        route = Route("p", route.config, PRICE, ProviderKey(uuid.uuid4(), "p", "sk-own"))
    falls_over = is_retryable(route, status)
    completion = status in COMPLETION_STATUSES
    assert not (falls_over and completion)
    if status < 200 or 300 <= status < 400:
        assert falls_over, "a 1xx or 3xx cannot have generated anything: the next provider is tried"
    if 200 <= status < 300:
        assert not falls_over, "a 2xx: the provider took the request, it is never run elsewhere"


def test_a_stream_waits_its_idle_timeout_and_an_answer_its_timeout_with_no_total():
    config = ProviderConfig(base_url="http://127.0.0.1:9/v1", timeout_s=600, stream_idle_timeout_s=120)
    route = Route("p", config, PRICE, None)

    assert (timeouts(route, stream=False).sock_read, timeouts(route, stream=True).sock_read) == (600, 120)
    assert timeouts(route, stream=True).total is None and timeouts(route, stream=False).sock_connect == 10
    default = Route("p", ProviderConfig(base_url="http://127.0.0.1:9/v1"), PRICE, None)
    assert timeouts(default, stream=True).sock_read == timeouts(default, stream=False).sock_read == 600

"""The database going away: every endpoint answers 503 with Retry-After (never a 500) and the
service recovers by itself when the database is back. The outage is real: the service reaches
PostgreSQL through a TCP proxy that the test stops."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import ADMIN_TOKEN, HTTP_TIMEOUT, Service
from tests.fake_upstream import ServerThread, free_port
from tests.tcp_proxy import TcpProxy

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def proxy(database_url):
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield proxy
    proxy.stop()


def through(database_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_a_database_outage_is_a_503_with_retry_after_then_recovers(
    database_url, proxy, upstreams, start_service, make_account
):
    account = await make_account(credits_="10")
    settings = start_service(upstreams).settings.model_copy(update={"maintenance_interval_seconds": 0})
    port = free_port()
    server = ServerThread(create_app(settings, through(database_url, proxy), port=port), port=port).start()
    service = Service(server.url, settings)
    chat = {"model": "gpt-4", "messages": MESSAGES}
    calls = [
        ("GET", "/v1/credits/balance", account.key, None),
        ("GET", "/v1/usage", account.key, None),
        ("GET", "/v1/models", account.key, None),
        ("POST", "/v1/chat/completions", account.key, chat),
        ("GET", "/admin/packages", ADMIN_TOKEN, None),
        ("POST", "/admin/users", ADMIN_TOKEN, {"email": "x@example.com"}),
    ]

    def call(method, path, token, body):
        return httpx.request(
            method,
            f"{service.url}{path}",
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=HTTP_TIMEOUT,
        )

    assert service.get("/v1/credits/balance", account.key).status_code == 200
    proxy.stop()
    down = [(path, call(method, path, token, body)) for method, path, token, body in calls]
    ready = httpx.get(f"{service.url}/readyz", timeout=HTTP_TIMEOUT)
    proxy.start()  # same port: the database is back
    back = service.get("/v1/credits/balance", account.key)

    server.stop()
    for path, response in down:
        assert response.status_code == 503, (path, response.text)
        assert response.headers["retry-after"].isdigit()
        error = response.json()["error"]
        assert error["code"] == "database_unavailable" and error["type"] == "service_unavailable"
    assert ready.status_code == 503
    assert back.status_code == 200

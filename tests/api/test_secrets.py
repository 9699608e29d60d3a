"""No secret in logs: the HTTP client's request lines (URLs) stay out of the service's logs."""

from __future__ import annotations

import logging

MESSAGES = [{"role": "user", "content": "Hi"}]


async def test_upstream_urls_are_not_logged_by_the_http_client(upstreams, start_service, make_account, caplog):
    caplog.set_level(logging.DEBUG)
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert upstreams["openai"].requests
    # the service's client is httpx; the test's own openai client logs as httpx2/httpcore2
    leaked = [
        r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpcore") and r.levelno < logging.WARNING
    ]
    assert leaked == []
    assert upstreams["openai"].base_url not in caplog.text
    assert "sk-platform-openai" not in caplog.text

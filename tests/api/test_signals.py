"""What operators watch: Prometheus metrics, request ids, structured logs without secrets."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from tests.fake_stripe import event
from tests.service import running_service

# long enough in bytes that the fake's reported 1000 prompt tokens are within the request's bound
MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name} {labels} not in metrics"
    return float(match.group(1))


async def test_metrics_count_requests_credits_refusals_webhooks_and_holds(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    rich, poor = await make_account(credits_="100"), await make_account()
    service.client(rich.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError):
        service.client(poor.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    service.webhook(event("customer.created", {"id": "cus_1"}))
    await pool.execute("SELECT reserve_credits($1, 3, 'req_in_flight')", rich.user_id)

    text = httpx.get(f"{service.url}/metrics").text

    assert metric(text, "ledger_llm_requests_total", model="gpt-4", provider="openai", status="200") == 1
    assert metric(text, "ledger_credits_debited_total") == pytest.approx(0.6)
    assert metric(text, "ledger_insufficient_credits_total") == 1
    assert metric(text, "ledger_upstream_latency_seconds_count", provider="openai") == 1
    assert metric(text, "ledger_webhook_events_total", type="customer.created", result="ignored") == 1
    assert metric(text, "ledger_holds_open") == 1 and metric(text, "ledger_credits_held") == 3
    assert metric(text, "ledger_db_pool_connections", state="total") >= 1


async def test_every_response_carries_a_request_id_and_the_usage_row_shares_it(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")

    raw = service.client(account.key).chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES)
    missing = httpx.get(f"{service.url}/v1/nowhere")
    unauthorised = httpx.get(f"{service.url}/v1/credits/balance")

    assert raw.headers["x-request-id"] == await pool.fetchval("SELECT request_id FROM llm_usage_log")
    assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("req_")
    assert missing.json()["error"]["code"] == "not_found"
    assert unauthorised.headers["x-request-id"] != missing.headers["x-request-id"]


def test_logs_are_json_lines_with_request_ids_and_no_secrets(database_url, tmp_path):
    log = tmp_path / "service.log"
    admin_token = "admin-token-that-must-not-leak"
    env = {"LEDGER_DATABASE_URL": database_url, "LEDGER_ADMIN_TOKEN": admin_token}
    with running_service(env, log=log) as base:
        admin = {"Authorization": f"Bearer {admin_token}"}
        user = httpx.post(f"{base}/admin/users", json={}, headers=admin).json()
        key = httpx.post(f"{base}/admin/users/{user['user_id']}/keys", json={}, headers=admin).json()["key"]
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "gpt-4", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {key}", "x-request-id": "client-123"},
        )
        httpx.post(f"{base}/v1/chat/completions", json={}, headers={"Authorization": "Bearer sk-lg-wrong"})

    text = log.read_text()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [e for e in entries if e["logger"] == "ledger.access"]
    assert reply.status_code == 200
    chat = [e for e in access if e["path"] == "/v1/chat/completions" and e["status"] == 200]
    assert chat[0]["request_id"] == reply.headers["x-request-id"] and chat[0]["client_request_id"] == "client-123"
    assert {e["status"] for e in access} >= {201, 200, 401}
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert key not in text and admin_token not in text


async def test_an_unexpected_failure_is_a_logged_500_in_openais_shape_that_charges_nothing(
    pool, upstreams, start_service, make_account, caplog
):
    service = start_service(upstreams)
    account = await make_account(credits_="10")
    # a database that lost the function that holds credits: the service cannot reserve
    await pool.execute(
        "ALTER FUNCTION reserve_llm_request(uuid, numeric, text, interval, text, jsonb) RENAME TO reserve_gone"
    )

    with pytest.raises(openai.InternalServerError) as raised:
        service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    response = raised.value.response
    assert response.json()["error"]["code"] == "internal_error"
    (failure,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert failure.request_id == response.headers["x-request-id"] and "reserve_llm_request" in caplog.text
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 10
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE user_id = $1", account.user_id) == 0
    assert not upstreams["openai"].requests


async def test_metrics_need_the_scrape_token_when_one_is_set(upstreams, start_service):
    service = start_service(upstreams, metrics_token="scrape-secret-123")

    missing = httpx.get(f"{service.url}/metrics")
    wrong = httpx.get(f"{service.url}/metrics", headers={"Authorization": "Bearer scrape-secret-12"})
    right = httpx.get(f"{service.url}/metrics", headers={"Authorization": "Bearer scrape-secret-123"})

    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_metrics_token"
    assert "scrape-secret" not in missing.text + wrong.text
    assert right.status_code == 200 and "ledger_holds_open" in right.text


async def test_metrics_read_the_database_at_most_once_per_cache_period(pool, upstreams, start_service, make_account):
    """Scrapes cannot load the database: its figures are reused for LEDGER_METRICS_CACHE_SECONDS."""
    account = await make_account(credits_="100")
    cached = start_service(upstreams, metrics_cache_seconds=3600)
    fresh = start_service(upstreams, metrics_cache_seconds=0)
    assert metric(httpx.get(f"{cached.url}/metrics").text, "ledger_holds_open") == 0

    await pool.execute("SELECT reserve_credits($1, 3, 'req_in_flight')", account.user_id)

    assert metric(httpx.get(f"{cached.url}/metrics").text, "ledger_holds_open") == 0
    assert metric(httpx.get(f"{fresh.url}/metrics").text, "ledger_holds_open") == 1


async def test_metrics_count_refusals_by_the_control_that_refused(pool, upstreams, start_service, make_account):
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    await pool.execute(
        """INSERT INTO rate_limits (workspace_id, scope_type, scope_id, requests, window_seconds)
           VALUES ($1::uuid, 'workspace', $1::uuid::text, 1, 3600)""",
        account.user_id,
    )
    service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            service.client(account.key).chat.completions.create(model="gpt-4", messages=MESSAGES)

    text = httpx.get(f"{service.url}/metrics").text

    assert metric(text, "ledger_control_refusals_total", control="rate_limit") == 2

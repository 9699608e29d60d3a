"""Spend controls through the service: budgets, rate limits and key restrictions, managed with
an admin key and met by the real SDKs' own errors, headers and retry logic."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.accounts.helpers import make_team
from tests.api.conftest import HTTP_TIMEOUT
from tests.fake_anthropic import FakeAnthropic

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


@pytest.fixture
def service(start_service, upstreams):
    return start_service(upstreams)


def project_key(service: Any, team: Any, name: str = "p", **restrictions: Any) -> tuple[str, str, str]:
    """(project id, key id, key) of a new project and a key in it."""
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": name}).json()
    made = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, restrictions)
    assert made.status_code == 201, made.text
    return project["id"], made.json()["id"], made.json()["value"]


async def test_a_project_budget_stops_parallel_requests_at_its_amount(pool, service):
    team = await make_team(pool, credits_="100")
    project_id, _, key = project_key(service, team)
    client = service.client(key)
    # what one request holds: the budget is set to hold exactly three at once
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=50)
    hold = await pool.fetchval("SELECT amount FROM credit_holds ORDER BY created_at DESC LIMIT 1")
    budget = call(
        service,
        "POST",
        f"{ORG}/budgets",
        team.admin_key,
        {"scope": {"type": "project", "id": project_id}, "amount": str(hold * 3), "period": "monthly"},
    )
    assert budget.status_code == 201, budget.text
    assert budget.json()["spent"] == "0.000000"  # the request before the budget is not in it

    served, refused = 0, []
    for _ in range(10):
        try:
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=50)
            served += 1
        except openai.APIStatusError as exc:
            refused.append(exc)
    assert served >= 3 and refused
    first = refused[0]
    assert first.status_code == 402 and first.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert "monthly budget" in first.message and "project" in first.message and "resets at" in first.message
    state = call(service, "GET", f"{ORG}/budgets/{budget.json()['id']}", team.admin_key).json()
    assert Decimal(state["spent"]) <= Decimal(state["amount"]) and state["held"] == "0.000000"
    spent = await pool.fetchval(
        "SELECT sum(credits_used) FROM llm_usage_log WHERE project_id = $1 AND created_at >= $2",
        uuid.UUID(project_id),
        await pool.fetchval("SELECT created_at FROM budgets WHERE id = $1", uuid.UUID(budget.json()["id"])),
    )
    assert Decimal(state["spent"]) == spent
    rows = await pool.fetch(
        "SELECT status_code, refused_by, credits_used, hold_id FROM llm_usage_log WHERE refused_by IS NOT NULL"
    )
    assert len(rows) == len(refused) and all(
        (r["status_code"], r["refused_by"], r["credits_used"], r["hold_id"]) == (402, "budget", 0, None) for r in rows
    )


async def test_a_key_rate_limit_answers_429_with_the_sdks_headers(pool, service):
    team = await make_team(pool, credits_="100")
    _, key_id, key = project_key(service, team)
    made = call(
        service,
        "POST",
        f"{ORG}/rate_limits",
        team.admin_key,
        {"scope": {"type": "key", "id": key_id}, "requests": 3, "window_seconds": 60, "tokens_per_minute": 100000},
    )
    assert made.status_code == 201, made.text
    client = service.client(key)
    remaining = []
    for _ in range(3):
        answer = client.chat.completions.with_raw_response.create(model="gpt-4", messages=HI, max_tokens=20)
        remaining.append(answer.headers["x-ratelimit-remaining-requests"])
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        assert answer.headers["x-ratelimit-limit-tokens"] == "100000"
        assert int(answer.headers["x-ratelimit-remaining-tokens"]) < 100000
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == ["2", "1", "0"]
    served = await pool.fetch("SELECT rate_limit_remaining FROM llm_usage_log WHERE success ORDER BY created_at")
    assert [row["rate_limit_remaining"] for row in served] == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)
    headers = limited.value.response.headers
    assert limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert 1 <= int(headers["retry-after"]) <= 60 and headers["x-ratelimit-remaining-requests"] == "0"
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0
    row = await pool.fetchrow("SELECT * FROM llm_usage_log WHERE refused_by IS NOT NULL")
    assert (row["status_code"], row["rate_limited"], row["rate_limit_remaining"]) == (429, True, 0)


async def test_messages_carry_anthropics_ratelimit_headers(pool, start_service, upstreams):
    fake = FakeAnthropic(input_tokens=10, output_tokens=5)
    fake.start()
    try:
        service = start_service({"anthropic": fake, "openai": upstreams["openai"]})
        team = await make_team(pool, credits_="100")
        _, _key_id, key = project_key(service, team)
        hourly = {"scope": {"type": "workspace"}, "strategy": "fixed_window", "requests": 2, "window_seconds": 3600}
        assert call(service, "POST", f"{ORG}/rate_limits", team.admin_key, hourly).status_code == 201
        client = anthropic.Anthropic(base_url=service.url, api_key=key, max_retries=0, timeout=HTTP_TIMEOUT)
        model = "claude-controls-test"
        await pool.execute(
            """INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window,
                   max_output_tokens) VALUES ('anthropic', $1, 1, 5, 200000, 8192)""",
            model,
        )
        answer = client.messages.with_raw_response.create(model=model, max_tokens=20, messages=HI)
        assert answer.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert answer.headers["anthropic-ratelimit-requests-remaining"] == "1"
        assert answer.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        assert "x-ratelimit-limit-requests" not in answer.headers
        client.messages.create(model=model, max_tokens=20, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(model=model, max_tokens=20, messages=HI)
        assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert int(limited.value.response.headers["retry-after"]) >= 1

        # the anthropic SDK's own retry waits as retry-after-ms says: a key that may call once a second
        _, paced_id, paced = project_key(service, team, "paced")
        once = {
            "scope": {"type": "key", "id": paced_id},
            "strategy": "leaky_bucket",
            "requests": 1,
            "window_seconds": 1,
        }
        assert call(service, "POST", f"{ORG}/rate_limits", team.admin_key, once).status_code == 201
        await pool.execute("DELETE FROM rate_limits WHERE scope_type = 'workspace'")
        retrying = anthropic.Anthropic(base_url=service.url, api_key=paced, max_retries=3, timeout=HTTP_TIMEOUT)
        retrying.messages.create(model=model, max_tokens=20, messages=HI)
        second = retrying.messages.with_raw_response.create(model=model, max_tokens=20, messages=HI)
        assert second.retries_taken >= 1 and second.http_response.status_code == 200
    finally:
        fake.stop()


async def test_the_sdks_own_retry_waits_as_retry_after_says_and_then_succeeds(pool, service):
    team = await make_team(pool, credits_="100")
    _, key_id, key = project_key(service, team)
    one_a_second = {
        "scope": {"type": "key", "id": key_id},
        "strategy": "leaky_bucket",
        "requests": 1,
        "window_seconds": 2,
    }
    assert call(service, "POST", f"{ORG}/rate_limits", team.admin_key, one_a_second).status_code == 201
    retrying = service.client(key).with_options(max_retries=3)
    retrying.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    second = retrying.chat.completions.with_raw_response.create(model="gpt-4", messages=HI, max_tokens=5)
    assert second.retries_taken >= 1 and second.http_response.status_code == 200
    refused = await pool.fetch("SELECT created_at FROM llm_usage_log WHERE rate_limited ORDER BY created_at")
    served = await pool.fetch("SELECT created_at FROM llm_usage_log WHERE success ORDER BY created_at")
    # the retry came once the bucket had room again, not at the SDK's own short backoff
    assert (served[-1]["created_at"] - refused[0]["created_at"]).total_seconds() >= 1


async def test_key_restrictions_refuse_with_403_naming_what_and_a_member_may_ask(pool, service):
    team = await make_team(pool, credits_="100")
    _, key_id, key = project_key(service, team, allowed_models=["gpt-4o*"], allowed_ips=["127.0.0.0/8"])
    client = service.client(key)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert refused.value.body["code"] == "model_not_allowed" and "'gpt-4'" in refused.value.message  # type: ignore[index]
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert await pool.fetchval("SELECT refused_by FROM llm_usage_log") == "key_restriction"

    asked = call(service, "POST", f"{ORG}/model_access_requests", team.admin_key,
                 {"key_id": key_id, "model": "gpt-4", "reason": "evals"})  # fmt: skip
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    again = call(service, "POST", f"{ORG}/model_access_requests", team.admin_key, {"key_id": key_id, "model": "gpt-4"})
    assert again.json()["id"] == asked.json()["id"]  # one pending request per key and model
    approved = call(service, "POST", f"{ORG}/model_access_requests/{asked.json()['id']}/approve", team.admin_key)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert (
        call(service, "POST", f"{ORG}/model_access_requests/{asked.json()['id']}/deny", team.admin_key).status_code
        == 404
    )
    assert client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5).choices
    types = {
        row["action"]
        for row in await pool.fetch("SELECT action FROM audit_logs WHERE workspace_id = $1", team.workspace_id)
    }
    assert {"model_access_request.created", "model_access_request.updated", "api_key.updated"} <= types

    _, other_id, other = project_key(service, team, "q", allowed_ips=["203.0.113.0/24"], allowed_providers=["openai"])
    with pytest.raises(openai.PermissionDeniedError) as from_here:
        service.client(other).chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert from_here.value.body["code"] == "ip_not_allowed" and "127.0.0.1" in from_here.value.message  # type: ignore[index]
    lifted = call(service, "POST", f"{ORG}/projects/{_project_of(service, team, other_id)}/api_keys/{other_id}",
                  team.admin_key, {"allowed_providers": ["anthropic"]})  # fmt: skip
    assert lifted.status_code == 200 and lifted.json()["allowed_ips"] is None
    with pytest.raises(openai.PermissionDeniedError) as provider:
        service.client(other).chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert provider.value.body["code"] == "provider_not_allowed"  # type: ignore[index]


def _project_of(service: Any, team: Any, key_id: str) -> str:
    for project in call(service, "GET", f"{ORG}/projects", team.admin_key).json()["data"]:
        keys = call(service, "GET", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key).json()["data"]
        if any(k["id"] == key_id for k in keys):
            return str(project["id"])
    raise AssertionError("no project holds the key")


async def test_an_end_user_budget_follows_the_requests_user_field(pool, service):
    team = await make_team(pool, credits_="100")
    _, _, key = project_key(service, team)
    made = call(service, "POST", f"{ORG}/budgets", team.admin_key,
                {"scope": {"type": "end_user", "id": "alice"}, "amount": "0.000001", "period": "daily"})  # fmt: skip
    assert made.status_code == 201, made.text
    client = service.client(key)
    with pytest.raises(openai.APIStatusError) as alice:
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5, user="alice")
    assert alice.value.status_code == 402 and "end user alice" in alice.value.message
    with pytest.raises(openai.APIStatusError):  # the newer field names her too
        client.chat.completions.create(
            model="gpt-4", messages=HI, max_tokens=5, extra_body={"safety_identifier": "alice"}
        )
    assert client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5, user="bob").choices
    assert await pool.fetchval("SELECT end_user FROM llm_usage_log WHERE success") == "bob"
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5, user="x" * 257)
    assert long.value.body["code"] == "invalid_end_user"  # type: ignore[index]


async def test_a_soft_budget_serves_and_says_so_and_the_balance_shows_what_is_left(pool, service):
    team = await make_team(pool, credits_="100")
    _, key_id, key = project_key(service, team)
    soft = call(service, "POST", f"{ORG}/budgets", team.admin_key,
                {"scope": {"type": "key", "id": key_id}, "amount": "0.000001", "period": "weekly",
                 "hard": False})  # fmt: skip
    hard = call(service, "POST", f"{ORG}/budgets", team.admin_key,
                {"scope": {"type": "workspace"}, "amount": "50", "period": "lifetime"})  # fmt: skip
    answer = service.client(key).chat.completions.with_raw_response.create(model="gpt-4", messages=HI, max_tokens=5)
    assert answer.headers["x-budget-exceeded"] == soft.json()["id"]
    balance = httpx.get(f"{service.url}/v1/credits/balance", headers={"Authorization": f"Bearer {key}"}).json()
    shown = {b["id"]: b for b in balance["budgets"]}
    assert set(shown) == {soft.json()["id"], hard.json()["id"]}
    lifetime = shown[hard.json()["id"]]
    assert lifetime["resets_at"] is None and Decimal(lifetime["remaining"]) == Decimal(50) - Decimal(lifetime["spent"])
    assert Decimal(lifetime["spent"]) > 0 and lifetime["held"] == "0.000000"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"scope": {"type": "project", "id": str(uuid.uuid4())}, "amount": "5", "period": "daily"}, None),
        ({"scope": {"type": "project", "id": "nope"}, "amount": "5", "period": "daily"}, "scope.id"),
        ({"scope": {"type": "workspace"}, "amount": "abc", "period": "daily"}, "amount"),
        ({"scope": {"type": "workspace"}, "amount": "-1", "period": "daily"}, "amount"),
        ({"scope": {"type": "workspace"}, "amount": "NaN", "period": "daily"}, "amount"),
        ({"scope": {"type": "workspace"}, "amount": "0.0000001", "period": "daily"}, "amount"),
        ({"scope": {"type": "workspace"}, "amount": 5, "period": "daily"}, "amount"),
        ({"scope": {"type": "workspace"}, "amount": "5", "period": "hourly"}, "period"),
        (
            {"scope": {"type": "workspace"}, "amount": "5", "period": "daily", "alert_thresholds": [0]},
            "alert_thresholds",
        ),
        ({"scope": {"type": "end_user", "id": "x" * 300}, "amount": "5", "period": "daily"}, "scope.id"),
        ({"scope": {"type": "workspace"}, "amount": "5", "period": "daily", "model": ""}, "model"),
    ],
)
async def test_a_bad_budget_is_a_400_and_nothing_is_written(pool, service, body, param):
    team = await make_team(pool)
    made = call(service, "POST", f"{ORG}/budgets", team.admin_key, body)
    assert made.status_code == 400, made.text
    error = made.json()["error"]
    assert error["message"] and (param is None or error["param"] == param), error
    assert await pool.fetchval("SELECT count(*) FROM budgets") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_logs WHERE action LIKE 'budget.%'") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"scope": {"type": "workspace"}},
        {"scope": {"type": "workspace"}, "requests": 5},
        {"scope": {"type": "workspace"}, "requests": 0, "window_seconds": 60},
        {"scope": {"type": "workspace"}, "requests": 5, "window_seconds": 60, "strategy": "random"},
        {"scope": {"type": "workspace"}, "preset": "standard", "requests": 5, "window_seconds": 60},
        {"scope": {"type": "workspace"}, "preset": "no-such-preset"},
        {"scope": {"type": "workspace"}, "tokens_per_minute": 10**12},
        {"scope": {"type": "key", "id": str(uuid.uuid4())}, "max_concurrent": 2},
    ],
)
async def test_a_bad_rate_limit_is_a_400_and_nothing_is_written(pool, service, body):
    team = await make_team(pool)
    made = call(service, "POST", f"{ORG}/rate_limits", team.admin_key, body)
    assert made.status_code == 400, made.text
    assert await pool.fetchval("SELECT count(*) FROM rate_limits") == 0


async def test_budgets_and_limits_are_managed_audited_and_kept_to_their_workspace(pool, service):
    ours, theirs = await make_team(pool), await make_team(pool)
    budget = call(service, "POST", f"{ORG}/budgets", ours.admin_key,
                  {"scope": {"type": "workspace"}, "amount": "20", "period": "monthly"}).json()  # fmt: skip
    limit = call(service, "POST", f"{ORG}/rate_limits", ours.admin_key,
                 {"scope": {"type": "workspace"}, "preset": "standard"}).json()  # fmt: skip
    assert (limit["requests"], limit["window_seconds"], limit["preset"]) == (60, 60, "standard")
    for path in (f"{ORG}/budgets/{budget['id']}", f"{ORG}/rate_limits/{limit['id']}"):
        assert call(service, "GET", path, theirs.admin_key).status_code == 404
        assert call(service, "DELETE", path, theirs.admin_key).status_code == 404
    changed = call(service, "POST", f"{ORG}/budgets/{budget['id']}", ours.admin_key, {"amount": "25", "hard": False})
    assert (changed.json()["amount"], changed.json()["hard"]) == ("25.000000", False)
    renumbered = call(service, "POST", f"{ORG}/rate_limits/{limit['id']}", ours.admin_key, {"max_concurrent": 3})
    assert (renumbered.json()["preset"], renumbered.json()["max_concurrent"]) == (None, 3)
    assert [b["id"] for b in call(service, "GET", f"{ORG}/budgets", ours.admin_key).json()["data"]] == [budget["id"]]
    assert call(service, "GET", f"{ORG}/budgets", theirs.admin_key).json()["data"] == []
    assert call(service, "DELETE", f"{ORG}/budgets/{budget['id']}", ours.admin_key).json()["deleted"] is True
    assert call(service, "DELETE", f"{ORG}/rate_limits/{limit['id']}", ours.admin_key).json()["deleted"] is True
    actions = [r["action"] for r in await pool.fetch(
        "SELECT action FROM audit_logs WHERE workspace_id = $1 AND resource_type IN ('budget', 'rate_limit')"
        " ORDER BY id",
        ours.workspace_id)]  # fmt: skip
    assert actions == ["budget.created", "rate_limit.created", "budget.updated", "rate_limit.updated",
                       "budget.deleted", "rate_limit.deleted"]  # fmt: skip
    assert {r["actor_type"] for r in await pool.fetch(
        "SELECT actor_type FROM audit_logs WHERE resource_type = 'budget'")} == {"admin_key"}  # fmt: skip

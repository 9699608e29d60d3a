"""Hostile input on the controls' path: any bytes in the end user and the model, any type where a
string is wanted; a 4xx or a served answer, never a 500, and a budget still applies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.accounts.helpers import make_team
from tests.api.test_spend_controls import ORG, call, project_key


@pytest.fixture
def service(start_service, upstreams):
    return start_service(upstreams)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"user": "a\u0000b"}, 400),  # PostgreSQL text cannot hold NUL: refused before any work
        ({"user": "\ud83d"}, 400),  # a lone surrogate has no UTF-8 form
        ({"safety_identifier": "x\u0000", "user": "y"}, 400),
        ({"user": 12}, 200),  # not a string: names no end user (the provider judges the field)
        ({"user": ["alice"]}, 200),
        ({"user": ""}, 200),
        ({"metadata": {"user_id": "\u0000"}}, 400),
        ({"model": "gpt-4\u0000"}, 400),
        ({"model": "gpt-\ud800"}, 400),
    ],
)
async def test_any_end_user_or_model_is_a_4xx_or_served_never_a_500(pool, service, extra: dict[str, Any], status):
    team = await make_team(pool, credits_="10")
    _, key_id, key = project_key(service, team, allowed_models=["gpt-*"])
    budget = {"scope": {"type": "workspace"}, "amount": "5", "period": "daily"}
    assert call(service, "POST", f"{ORG}/budgets", team.admin_key, budget).status_code == 201
    limit = {"scope": {"type": "key", "id": key_id}, "requests": 100, "window_seconds": 60}
    assert call(service, "POST", f"{ORG}/rate_limits", team.admin_key, limit).status_code == 201
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, **extra}
    raw = json.dumps(body)  # \\u escapes as a client's JSON may carry them
    answer = httpx.post(
        f"{service.url}/v1/chat/completions",
        content=raw,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == status, answer.text
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0

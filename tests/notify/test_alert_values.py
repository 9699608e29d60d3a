"""Each alert condition's value, read from the ledger's own tables, and the rules of opening: a
value breaks its rule in the condition's direction, an alert opens once per rule, waits out its
cooldown, and resolves when the value clears (not when it cannot be judged)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from tests.accounts.helpers import make_team


async def usage(pool, workspace, *, success=True, status=200, latency=100, credits="0.5", provider="openai",
                remaining=None, refused_by=None) -> None:  # fmt: skip
    row = {"request_id": f"r_{uuid.uuid4().hex}", "user_id": str(workspace), "model": "m", "provider": provider,
           "status_code": status, "latency_ms": latency, "rate_limit_remaining": remaining,
           "refused_by": refused_by}  # fmt: skip
    await pool.execute("SELECT ledger_log_usage($1::jsonb, NULL, $2, NULL, $3)", json.dumps(row), Decimal(credits),
                       success)  # fmt: skip


async def rule(pool, workspace, condition, threshold, **more) -> uuid.UUID:
    config = json.dumps({k: v for k, v in more.items() if k in ("provider", "budget_id")})
    return await pool.fetchval(
        "INSERT INTO alert_rules (workspace_id, name, condition_type, threshold, min_requests, cooldown_secs,"
        " condition_config) VALUES ($1, $2, $2, $3, $4, $5, $6::jsonb) RETURNING id",
        workspace, condition, Decimal(threshold), more.get("min_requests", 2), more.get("cooldown", 0), config,
    )  # fmt: skip


async def value(pool, rule_id):
    return await pool.fetchval("SELECT ledger_alert_value(r) FROM alert_rules r WHERE id = $1", rule_id)


async def test_each_condition_reads_its_value(pool):
    team = await make_team(pool)
    ws = team.workspace_id
    for latency in (100, 200, 300, 400, 1000):
        await usage(pool, ws, latency=latency, remaining=latency // 100)
    await usage(pool, ws, success=False, status=502, provider=None, credits="0")
    await usage(pool, ws, success=False, status=429, refused_by="rate_limit", credits="0")
    errors = await rule(pool, ws, "error_rate", "10")
    assert await value(pool, errors) == Decimal("14.29")  # 1 of 7: a refusal by its own limit is no error
    assert await value(pool, await rule(pool, ws, "spend_rate", "1")) == Decimal("2.5")
    p95 = await value(pool, await rule(pool, ws, "latency_threshold", "500"))
    assert round(p95) == 880  # the 95th percentile of 100, 200, 300, 400 and 1000, interpolated
    assert await value(pool, await rule(pool, ws, "rate_limit_proximity", "1")) == 1
    down = await rule(pool, ws, "provider_down", "10", provider="openai")
    assert await value(pool, down) == Decimal("16.67")  # 1 of 6: the request no provider served counts
    sparse = await rule(pool, ws, "error_rate", "10", min_requests=100)
    assert await value(pool, sparse) is None  # too little to judge


async def test_an_alert_opens_once_waits_its_cooldown_and_resolves_when_the_value_clears(pool):
    team = await make_team(pool)
    ws = team.workspace_id
    await usage(pool, ws, success=False, status=500)
    await usage(pool, ws, success=False, status=500)
    errors = await rule(pool, ws, "error_rate", "50", cooldown=3600)
    assert tuple(await pool.fetchrow("SELECT * FROM evaluate_alert_rules()")) == (1, 0)
    assert tuple(await pool.fetchrow("SELECT * FROM evaluate_alert_rules()")) == (0, 0)  # once
    for _ in range(6):
        await usage(pool, ws)
    assert tuple(await pool.fetchrow("SELECT * FROM evaluate_alert_rules()")) == (0, 1)  # 25%: resolved
    for _ in range(20):
        await usage(pool, ws, success=False, status=500)
    assert tuple(await pool.fetchrow("SELECT * FROM evaluate_alert_rules()")) == (0, 0)  # cooling down
    await pool.execute("UPDATE alert_rules SET last_triggered_at = now() - interval '2 hours' WHERE id = $1", errors)
    assert tuple(await pool.fetchrow("SELECT * FROM evaluate_alert_rules()")) == (1, 0)
    assert await pool.fetchval("SELECT count(*) FROM alert_events WHERE rule_id = $1", errors) == 2
    # few requests left is the breaking side of rate-limit proximity
    near = await rule(pool, ws, "rate_limit_proximity", "2", min_requests=1)
    assert await pool.fetchval("SELECT ledger_alert_breaks(r, 1) FROM alert_rules r WHERE id = $1", near)
    assert not await pool.fetchval("SELECT ledger_alert_breaks(r, 3) FROM alert_rules r WHERE id = $1", near)

"""Grants with terms through the surfaces: the operator grants with an expiry and a priority (admin
API, CLI), the balance shows credits by lot in spending order, a workspace's admin key lists its
grants, and psql lists what expires this month."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from tests.accounts.helpers import make_team
from tests.test_cli import ledger
from tests.test_ops import rows


async def test_a_promotion_is_spent_before_purchased_credits_and_shown_by_expiry(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="0")
    await pool.execute("SELECT add_user_credits($1, 10, 'purchase', 'pi_lots')", account.user_id)
    soon = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    path = f"/admin/users/{account.user_id}/credits"
    granted = service.admin(
        "POST",
        path,
        json={"amount": "2", "transaction_type": "bonus", "reference": "promo-1", "expires_at": soon.isoformat(),
              "priority": 10, "description": "spring promotion"},
    )  # fmt: skip
    assert granted.status_code == 200, granted.text
    for bad in [{"priority": 101}, {"priority": -1}, {"expires_at": "2020-01-01T00:00:00Z"}, {"expires_at": "soon"}]:
        refused = service.admin(
            "POST", path, json={"amount": "2", "transaction_type": "bonus", "reference": "x", **bad}
        )
        assert refused.status_code == 400, (bad, refused.text)
    assert await pool.fetchval("SELECT count(*) FROM credit_grants") == 1
    lots = service.get("/v1/credits/balance", account.key).json()["credits_by_lot"]
    assert [(lot["lot"], lot["remaining"]) for lot in lots] == [("grant", "2.000000"), ("purchased", "10.000000")]
    assert datetime.fromisoformat(lots[0]["expires_at"]) == soon and lots[1]["expires_at"] is None

    service.client(account.key).chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    charge = await pool.fetchval("SELECT credits_used FROM llm_usage_log")
    assert charge > 0
    after = service.get("/v1/credits/balance", account.key).json()["credits_by_lot"]
    from_grant = min(charge, Decimal(2))
    expected = [("grant", str(Decimal(2) - from_grant))] if from_grant < 2 else []
    expected.append(("purchased", str(Decimal(10) - (charge - from_grant))))
    assert [(lot["lot"], lot["remaining"]) for lot in after] == expected


async def test_the_cli_grants_with_terms_and_the_organization_and_psql_read_them(pool, database_url, start_service):
    service = start_service()
    team = await make_team(pool)
    env = {"LEDGER_DATABASE_URL": database_url}
    soon = datetime.now(UTC) + timedelta(hours=2)
    made = ledger("credits", "bonus", str(team.workspace_id), "5", "--reason", "welcome", "--reference", "w-1",
                  "--expires-at", soon.isoformat(), "--priority", "5", "--json", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    bad = ledger("credits", "bonus", str(team.workspace_id), "5", "--reason", "x", "--expires-at", "tomorrow", env=env)
    assert bad.returncode != 0 and "ISO time" in bad.stderr
    listed = json.loads(ledger("credits", "grants", str(team.workspace_id), "--json", env=env).stdout)
    assert [(g["kind"], g["remaining"], g["priority"]) for g in listed] == [("bonus", "5.000000", 5)]
    shown = httpx.get(
        f"{service.url}/v1/organization/credit_grants",
        headers={"Authorization": f"Bearer {team.admin_key}"},
        timeout=30,
    ).json()["data"]
    assert [(g["remaining"], g["expires_at"]) for g in shown] == [("5.000000", int(soon.timestamp()))]
    expiring = rows(database_url, "grants_expiring_this_month")
    in_this_month = (soon.year, soon.month) == (datetime.now(UTC).year, datetime.now(UTC).month)
    assert [r[5] for r in expiring] == (["5.000000"] if in_this_month else [])

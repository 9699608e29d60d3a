"""scripts/ops/*.sql through the real psql, on a ledger seeded with known purchases, usage and refunds."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.billing import checkout as stripe_checkout
from ledger.billing.events import receive_event
from ledger.db.migrations import discover
from ledger.gateway import byok
from ledger.gateway.byok import KeyCipher
from ledger.money import accounts as users
from ledger.money.credits import add_user_credits
from ledger.money.holds import reserve_credits
from ledger.money.usage import UsageRecord, fail_request, finish_request
from ledger.ops import list_queries
from tests.psql import psql

LEDGER = str(Path(sys.executable).parent / "ledger")


def rows(database_url: str, name: str, **variables: str) -> list[list[str]]:
    (query,) = [q for q in list_queries() if q.name == name]
    out = psql(database_url, file=query.path, variables=variables)
    return [line.split("|") for line in out.splitlines() if line]


async def metered(pool, user_id, *, model, provider, power_level, credits, cost, prompt=100, completion=50, **parts):
    request_id = f"req_{model}_{provider}_{credits}_{power_level}"
    hold = await reserve_credits(pool, user_id, Decimal(credits) + 1, request_id)
    usage = UsageRecord(
        request_id=request_id,
        user_id=user_id,
        gateway_key_id=None,
        model=model,
        power_level=power_level,
        provider=provider,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=Decimal(cost),
        cost_multiplier=Decimal(1),
        latency_ms=120,
        status_code=200,
        **parts,
    )
    await finish_request(pool, hold.hold_id, Decimal(credits), usage, None)


@pytest.fixture
async def seeded(pool):
    """Alice bought the Value Pack (4500 cents, 500 credits), got 1500 cents refunded and made three
    requests; Bob had one failed request and has a request in flight; one Stripe event waits."""
    alice = (await users.create_user(pool, "alice@example.com"))["user_id"]
    bob = (await users.create_user(pool, "bob@example.com"))["user_id"]
    value_pack = await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Value Pack'")
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "payment_intent": "pi_1",
        "amount_total": 4500,
        "currency": "usd",
        "metadata": {"user_id": str(alice), "package_id": str(value_pack), "credits": "500"},
    }
    await stripe_checkout.record_session(pool, session["id"], alice, value_pack, Decimal(500), 4500)
    await receive_event(pool, {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": session}})
    charge = {"id": "ch_1", "payment_intent": "pi_1", "amount": 4500, "amount_refunded": 1500}
    await receive_event(pool, {"id": "evt_2", "type": "charge.refunded", "data": {"object": charge}})
    early = {"id": "ch_9", "payment_intent": "pi_unknown", "amount": 1000, "amount_refunded": 1000}
    await receive_event(pool, {"id": "evt_early", "type": "charge.refunded", "data": {"object": early}})

    await metered(pool, alice, model="gpt-4", provider="openai", power_level="balanced", credits="150", cost="15")
    await metered(pool, alice, model="gpt-4", provider="openai", power_level="precision", credits="30", cost="2")
    await metered(
        pool,
        alice,
        model="claude-3-haiku-20240307",
        provider="openrouter",
        power_level="eco",
        credits="1.5",
        cost="0.15",
    )
    await fail_request(
        pool,
        None,
        UsageRecord(
            request_id="req_failed",
            user_id=bob,
            gateway_key_id=None,
            model="gpt-4",
            power_level="balanced",
            provider="openai",
            status_code=502,
            error_message="all providers failed",
            success=False,
        ),
    )
    await pool.execute("UPDATE user_credits SET monthly_allowance = 1000 WHERE user_id = $1", bob)
    await reserve_credits(pool, bob, 7, "req_in_flight")
    cipher = KeyCipher(base64.b64encode(os.urandom(32)).decode())
    await byok.add_key(pool, cipher, alice, "openai", "sk-alices-own-key", "work")
    return {"alice": str(alice), "bob": str(bob)}


async def test_every_query_runs_through_psql(database_url, seeded):
    for query in list_queries():
        variables = {"user_id": seeded["alice"]} if "user_id" in query.variables else {}
        psql(database_url, file=query.path, variables=variables)


def test_every_query_says_what_it_answers_and_what_it_needs():
    queries = list_queries()
    names = {q.name for q in queries}

    assert {
        "reconciliation",
        "holds",
        "revenue_by_package",
        "spend_by_power_level",
        "spend_by_provider",
        "failed_requests",
        "stripe_events",
        "stripe_payments_review",
        "check_user_balance",
        "recent_transactions",
        "usage_stats_24h",
        "user_byok_keys",
        "vacuum_tables",
        "table_sizes",
        "rebuild_indexes",
        "active_users_7d",
        "revenue_summary_this_month",
        "top_models_this_month",
        "low_balance_users",
        "create_balance_record",
        "last_transaction",
        "duplicate_requests",
        "tokens_by_model_30d",
        "revenue_by_month",
        "credits_sold_vs_used",
        "top_users_30d",
        "spend_by_model_30d",
        "usage_by_day_30d",
    } <= names
    assert all(q.description and not q.description.startswith("-") for q in queries)
    assert {q.name for q in queries if q.variables == ("user_id",)} == {
        "check_user_balance",
        "recent_transactions",
        "usage_stats_24h",
        "user_byok_keys",
        "create_balance_record",
        "last_transaction",
    }


async def test_balance_transactions_and_usage_of_a_user(database_url, seeded):
    alice = seeded["alice"]

    (balance,) = rows(database_url, "check_user_balance", user_id=alice)
    recent = rows(database_url, "recent_transactions", user_id=alice)
    stats = rows(database_url, "usage_stats_24h", user_id=alice)

    # 500 bought, 166.666667 refunded, 181.5 used beyond the trial's 100-credit allowance
    assert balance[1:3] == ["251.833333", "trial"] and balance[5] == "181.500000"
    assert [(r[1], r[2]) for r in recent] == [
        ("usage", "-1.500000"),
        ("usage", "-30.000000"),
        ("usage", "-50.000000"),
        ("refund", "-166.666667"),
        ("purchase", "500.000000"),
    ]
    assert [(s[0], s[1], s[3]) for s in stats] == [
        ("gpt-4", "2", "180.000000"),
        ("claude-3-haiku-20240307", "1", "1.500000"),
    ]


async def test_revenue_by_package_counts_what_stripe_charged_and_refunded(database_url, seeded):
    (value_pack,) = rows(database_url, "revenue_by_package")

    assert value_pack == [
        "Value Pack",
        "usd",
        "1",
        "4500",
        "1500",
        "3000",
        "30.00",
        "500.000000",
        "166.666667",
        "0.000000",
    ]


async def test_revenue_is_grouped_by_currency_and_leaves_out_payments_under_review(database_url, pool, seeded):
    """Cents of two currencies never add up; money kept for review was not sold."""
    value_pack = await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Value Pack'")
    for payment_intent, currency, status in (("pi_eur", "eur", "paid"), ("pi_rev", "usd", "review")):
        await pool.execute(
            """INSERT INTO stripe_payments (payment_intent_id, user_id, package_id, credits, amount_cents, currency,
                                            status, paid_at)
               VALUES ($1, $2::uuid, $3, 500, 4200, $4, $5, now())""",
            payment_intent,
            seeded["alice"],
            value_pack,
            currency,
            status,
        )

    revenue = rows(database_url, "revenue_by_package")
    review = rows(database_url, "stripe_payments_review")

    assert [(r[0], r[1], r[3]) for r in revenue] == [("Value Pack", "eur", "4200"), ("Value Pack", "usd", "4500")]
    assert [(r[0], r[4], r[5]) for r in review] == [("pi_rev", "4200", "usd")]


async def test_stripe_events_lists_rejected_and_review_events_with_their_reason(database_url, pool, seeded):
    rejected = {"id": "ch_x", "payment_intent": "pi_1", "amount": 4500}  # no amount_refunded
    await receive_event(pool, {"id": "evt_rejected", "type": "charge.refunded", "data": {"object": rejected}})
    eur = {"id": "ch_1", "payment_intent": "pi_1", "amount": 4500, "amount_refunded": 4500, "currency": "eur"}
    await receive_event(pool, {"id": "evt_review", "type": "charge.refunded", "data": {"object": eur}})

    listed = {r[0]: r for r in rows(database_url, "stripe_events")}

    assert set(listed) == {"evt_early", "evt_rejected", "evt_review"}
    assert listed["evt_rejected"][2] == "rejected" and "amount_refunded" in listed["evt_rejected"][4]
    assert listed["evt_review"][2] == "review" and "eur" in listed["evt_review"][4]


async def test_spend_by_power_level_and_provider(database_url, seeded):
    levels = {r[0]: r[1:] for r in rows(database_url, "spend_by_power_level")}
    providers = {(r[0], r[1]): r[2:] for r in rows(database_url, "spend_by_provider")}

    assert levels["balanced"][:3] == ["2", "150.000000", "15.0000000000"]
    assert levels["precision"][:2] == ["1", "30.000000"] and levels["eco"][:2] == ["1", "1.500000"]
    assert providers[("openai", "f")][:2] == ["3", "180.000000"]
    assert providers[("openrouter", "f")][3:5] == ["1", "1.500000"]


async def test_tokens_by_model_shows_each_token_type(database_url, pool):
    user = (await users.create_user(pool, "carol@example.com"))["user_id"]
    await add_user_credits(pool, user, "100", "bonus", "start")
    for number in (1, 2):
        await metered(
            pool,
            user,
            model=f"claude-{number}",
            provider="anthropic",
            power_level="balanced",
            credits=str(number),
            cost="0.1",
            prompt=1000,
            completion=200,
            api="messages",
            cache_read_tokens=600,
            cache_write_tokens=300,
            cache_write_1h_tokens=100,
            reasoning_tokens=50,
        )

    (first, second) = rows(database_url, "tokens_by_model_30d")

    assert first[:5] == ["claude-2", "messages", "anthropic", "1", "1000"]
    assert first[5:12] == ["600", "60.0", "300", "100", "0", "200", "50"]
    assert second[0] == "claude-1" and second[-1] == "1.000000"


async def test_failed_requests_holds_and_stripe_events(database_url, seeded):
    (failed,) = rows(database_url, "failed_requests")
    (hold,) = rows(database_url, "holds")
    (waiting,) = rows(database_url, "stripe_events")

    assert failed[:5] == ["openai", "502", "all providers failed", "1", "0.000000"]
    assert (hold[1], hold[2], hold[3], hold[4]) == (seeded["bob"], "req_in_flight", "7.000000", "open")
    assert (waiting[0], waiting[2], waiting[3]) == ("evt_early", "deferred", "1")


async def test_a_healthy_ledger_reconciles_and_has_no_duplicates(database_url, seeded):
    assert rows(database_url, "reconciliation") == []
    assert rows(database_url, "duplicate_requests") == []


async def test_reconciliation_finds_a_tampered_ledger(database_url, pool, seeded):
    await pool.execute("ALTER TABLE credit_transactions DISABLE TRIGGER credit_transactions_append_only")
    await pool.execute("UPDATE credit_transactions SET amount = amount + 1 WHERE transaction_type = 'purchase'")

    problems = rows(database_url, "reconciliation")

    assert [(p[0], p[1]) for p in problems] == [(seeded["alice"], "balance_mismatch"), (seeded["alice"], "chain_break")]


def ledger_ops(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [LEDGER, "ops", *args],
        env={**env, "LEDGER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_ledger_ops_lists_and_runs_the_queries(database_url, seeded):
    listing = ledger_ops(database_url)
    balance = ledger_ops(database_url, "check_user_balance", "--var", f"user_id={seeded['alice']}")
    missing = ledger_ops(database_url, "check_user_balance")
    unknown = ledger_ops(database_url, "nonesuch")

    assert listing.returncode == 0
    assert any(
        line.startswith("revenue_by_package") and "Stripe actually charged" in line
        for line in listing.stdout.splitlines()
    )
    assert balance.returncode == 0 and "251.833333" in balance.stdout
    assert missing.returncode == 1 and "--var user_id=..." in missing.stderr
    assert unknown.returncode == 1 and "no ops query named 'nonesuch'" in unknown.stderr


async def test_the_seed_monitoring_queries_on_known_data(database_url, seeded):
    assert rows(database_url, "active_users_7d") == [["2"]]
    top = rows(database_url, "top_models_this_month")
    assert [(r[0], r[1], r[2], r[3]) for r in top] == [
        ("gpt-4", "3", "300", "180.000000"),
        ("claude-3-haiku-20240307", "1", "150", "1.500000"),
    ]
    assert [r[0] for r in rows(database_url, "low_balance_users")] == [seeded["bob"]]
    # the seed's estimate: 500 credits x the price of the package of 500 credits ($45)
    assert rows(database_url, "revenue_summary_this_month") == [["1", "500.000000", "22500.00000000"]]
    assert {r[1] for r in rows(database_url, "table_sizes")} == {
        "user_credits",
        "credit_transactions",
        "llm_usage_log",
        "user_provider_keys",
        "credit_packages",
        "power_level_configs",
    }
    assert rows(database_url, "schema_version")[0][0] == discover()[-1].version


async def test_the_seed_user_queries_on_known_data(database_url, pool, seeded):
    alice = seeded["alice"]

    keys = rows(database_url, "user_byok_keys", user_id=alice)
    last = rows(database_url, "last_transaction", user_id=alice)
    new_user = str(uuid.uuid4())
    rows(database_url, "create_balance_record", user_id=new_user)
    rows(database_url, "create_balance_record", user_id=new_user)

    assert keys == [["openai", "work", "t", "t", "", "0"]]
    assert last[0] == ["251.833333"] and (last[1][2], last[1][3]) == ("usage", "-1.500000")
    created = await pool.fetchrow("SELECT * FROM user_credits WHERE user_id = $1::uuid", new_user)
    assert (created["balance"], created["tier"], created["monthly_allowance"]) == (0, "trial", 100)


async def test_the_maintenance_commands_run(database_url, seeded):
    assert rows(database_url, "vacuum_tables") == []
    assert rows(database_url, "rebuild_indexes") == []


async def test_this_month_is_the_utc_month_whatever_the_sessions_time_zone(pool, database_url, make_user):
    """Pacific/Kiritimati is UTC+14: its month starts 14 hours before UTC's, so a session there
    would count the last hours of the previous UTC month as this month's."""
    user = await make_user()
    await pool.execute(
        """INSERT INTO llm_usage_log (request_id, user_id, model, success, created_at)
           VALUES ('req_last_month', $1, 'last-month-model', true,
                   date_trunc('month', now(), 'UTC') - interval '6 hours')""",
        user,
    )
    await pool.execute(
        """INSERT INTO stripe_payments (payment_intent_id, user_id, credits, amount_cents, currency, status, paid_at)
           VALUES ('pi_last_month', $1, 100, 1000, 'usd', 'paid',
                   date_trunc('month', now(), 'UTC') - interval '6 hours')""",
        user,
    )
    kiritimati = f"{database_url}?options=-c%20TimeZone%3DPacific/Kiritimati"

    assert psql(kiritimati, sql="SHOW TimeZone").strip() == "Pacific/Kiritimati"
    assert rows(kiritimati, "top_models_this_month") == []
    assert rows(kiritimati, "revenue_by_package") == []


async def test_budgets_near_their_amount_and_the_most_limited_keys(database_url, pool):
    from tests.controls.sql_requests import begin, make_wallet, settle

    wallet = await make_wallet(pool)
    await pool.execute(
        """INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period)
           VALUES ($1::uuid, 'workspace', $1::uuid::text, 10, 'monthly'),
                  ($1::uuid, 'key', $2, 100, 'daily')""",
        wallet.workspace_id,
        str(wallet.key_id),
    )
    await pool.execute(
        "INSERT INTO rate_limits (workspace_id, scope_type, scope_id, requests, window_seconds)"
        " VALUES ($1::uuid, 'workspace', $1::uuid::text, 2, 3600)",
        wallet.workspace_id,
    )
    request_id, row = await begin(pool, wallet, Decimal(9))
    await settle(pool, wallet, request_id, row["hold_id"], Decimal("8.5"))
    await begin(pool, wallet, Decimal("0.5"))  # held: 9 of 10
    for _ in range(3):
        assert (await begin(pool, wallet, Decimal("0.1")))[1]["hold_state"] == "rate_limit"
    near = rows(database_url, "budgets_near_amount")
    assert len(near) == 1 and near[0][1] == f"workspace {wallet.workspace_id}" and near[0][9] == "90.0"
    limited = rows(database_url, "most_limited_keys")
    assert len(limited) == 1 and limited[0][3:6] == ["3", "0", "0"]


async def test_failing_webhooks_and_notifications_waiting(database_url, pool):
    import base64
    import os

    from ledger.accounts.actor import OPERATOR, acting
    from ledger.gateway.byok import KeyCipher
    from ledger.money import credits
    from ledger.notify import webhooks
    from tests.accounts.helpers import make_team

    team = await make_team(pool)
    cipher = KeyCipher(base64.b64encode(os.urandom(32)).decode())
    async with acting(pool, OPERATOR) as conn:
        made = await webhooks.create_webhook(
            conn,
            cipher,
            team.workspace_id,
            webhooks.WebhookSpec("down", "http://127.0.0.1:9/", ["*"]),
            None,
            allow_private=True,
        )
    await credits.add_user_credits(pool, team.workspace_id, "2", "purchase", "pi_ops_webhooks")
    waiting = rows(database_url, "notifications_waiting")
    assert [r[:3] for r in waiting] == [["webhook", "credits.purchased", "1"]]
    assert rows(database_url, "failing_webhooks") == []
    await pool.execute(
        "UPDATE webhooks SET consecutive_failures = 4, failing_since = now(), last_failure_reason = 'refused'"
        " WHERE id = $1", made.webhook["id"])  # fmt: skip
    [failing] = rows(database_url, "failing_webhooks")
    assert failing[1:5] == ["down", "http://127.0.0.1:9/", "failing", "4"] and failing[7] == "1"

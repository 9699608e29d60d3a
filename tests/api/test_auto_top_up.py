"""Auto top-up against the fake Stripe (a real HTTP server speaking Checkout in setup mode,
SetupIntents, PaymentIntents and signed webhooks): a card saved once, exactly one off-session
charge per crossing however many requests cross, credits only from the signed webhook with its
amount checked, and three declines in a row turn it off and say so."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ledger.billing import auto_top_up
from ledger.billing.checkout import stripe_client
from tests.accounts.helpers import make_team
from tests.fake_stripe import event, sign

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


@pytest.fixture
def service(start_service, upstreams, fake_stripe, tmp_path):
    made = start_service(
        upstreams,
        stripe_secret_key=fake_stripe.secret_key,
        stripe_api_base=fake_stripe.api_base,
        notify_interval_seconds=0.05,
        maintenance_interval_seconds=0,  # the tests run the retries themselves
        mail_outbox_dir=tmp_path / "outbox",
    )
    fake_stripe.webhook_url = f"{made.url}/webhooks/stripe"
    return made


async def wait_until(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.05)
    return found


async def save_card(service: Any, team: Any, fake_stripe: Any, card: str = "pm_card_visa") -> None:
    fake_stripe.next_card = card
    setup = call(service, "POST", f"{ORG}/auto_top_up/card", team.admin_key,
                 {"success_url": "https://example.com/ok", "cancel_url": "https://example.com/back"})  # fmt: skip
    assert setup.status_code == 201, setup.text
    session_id = setup.json()["id"]
    paid = httpx.post(f"{fake_stripe.api_base}/pay/{session_id}", timeout=30)
    assert paid.status_code == 303
    shown = call(service, "GET", f"{ORG}/auto_top_up", team.admin_key).json()
    assert shown["card_saved"] is True


async def starter_pack(pool) -> uuid.UUID:
    return await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Starter Pack'")


async def test_a_crossing_charges_the_saved_card_once_and_the_webhook_credits_it(pool, service, fake_stripe):
    team = await make_team(pool, credits_="10")
    package = await starter_pack(pool)
    # turning it on needs a card first
    early = call(service, "POST", f"{ORG}/auto_top_up", team.admin_key,
                 {"enabled": True, "threshold": "5", "package_id": str(package), "monthly_limit": "500"})  # fmt: skip
    assert early.status_code == 400 and "card" in early.json()["error"]["message"]
    await save_card(service, team, fake_stripe)
    spendable = Decimal(call(service, "GET", f"{ORG}/notification_settings", team.admin_key).json()["spendable"])
    threshold = spendable - Decimal("0.000001")  # the first charged request crosses it
    wanted = {"enabled": True, "threshold": str(threshold), "package_id": str(package), "monthly_limit": "150"}
    on = call(service, "POST", f"{ORG}/auto_top_up", team.admin_key, wanted)
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    client = service.client(key)
    for _ in range(5):  # every request after the first is below the threshold too
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    credited = await wait_until(lambda: pool.fetchval("SELECT count(*) FROM auto_top_ups WHERE status = 'succeeded'"))
    assert credited == 1
    assert len(fake_stripe.payment_intents) == 1  # one charge for the crossing
    [intent] = fake_stripe.payment_intents.values()
    assert intent["amount"] == 1000 and intent["customer"] and intent["metadata"]["kind"] == "auto_top_up"
    purchase = await pool.fetchrow(
        "SELECT * FROM credit_transactions WHERE user_id = $1 AND payment_intent_id = $2",
        team.workspace_id,
        intent["id"],
    )
    assert purchase["transaction_type"] == "purchase" and purchase["amount"] == Decimal(100)
    # Stripe redelivers the event: nothing more
    raw = json.dumps(event("payment_intent.succeeded", intent))
    again = httpx.post(service.url + "/webhooks/stripe", content=raw,
                       headers={"Stripe-Signature": sign(raw), "Content-Type": "application/json"})  # fmt: skip
    assert again.status_code == 200
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE transaction_type = 'purchase'"
                               " AND user_id = $1", team.workspace_id) == 2  # fmt: skip
    # the month's limit (150) leaves no room for a second 100-credit pack: the next crossing is told, not charged
    higher = call(service, "POST", f"{ORG}/auto_top_up", team.admin_key, {"enabled": True, "threshold": "100000"})
    assert higher.status_code == 200, higher.text
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    await asyncio.sleep(0.3)
    assert len(fake_stripe.payment_intents) == 1
    told = await pool.fetch("SELECT data FROM notification_events WHERE event_type = 'auto_top_up.failed'")
    assert len(told) == 1 and "monthly limit" in told[0]["data"]


async def test_three_declines_in_a_row_turn_it_off_and_tell_the_owners(pool, service, fake_stripe, tmp_path):
    team = await make_team(pool, credits_="1")
    package = await starter_pack(pool)
    await save_card(service, team, fake_stripe, "pm_card_chargeDeclined")
    on = call(service, "POST", f"{ORG}/auto_top_up", team.admin_key,
              {"enabled": True, "threshold": "1000", "package_id": str(package), "monthly_limit": "1000"})  # fmt: skip
    assert on.status_code == 200, on.text  # already below: the first charge starts at once
    for attempt in (1, 2, 3):
        await wait_until(
            lambda n=attempt: pool.fetchval("SELECT count(*) >= $1 FROM auto_top_ups WHERE status = 'failed'", n)
        )
        if attempt < 3:  # its back-off ends; maintenance retries
            await pool.execute("UPDATE auto_top_up_settings SET next_try_at = now()")
            assert await pool.fetchval("SELECT retry_auto_top_ups()") == 1
            assert await pool.fetchval("SELECT count(*) FROM auto_top_ups") == attempt + 1
    settings = call(service, "GET", f"{ORG}/auto_top_up", team.admin_key).json()
    assert settings["enabled"] is False and settings["failures_in_a_row"] == 3
    assert "3 failed charges" in settings["disabled_reason"]
    assert [r["failure_code"] for r in settings["recent"]] == ["card_declined"] * 3
    assert await pool.fetchval("SELECT auto_top_up_threshold FROM user_credits WHERE user_id = $1",
                               team.workspace_id) is None  # fmt: skip
    assert await pool.fetchval("SELECT retry_auto_top_ups()") == 0
    failed = await pool.fetch(
        "SELECT data FROM notification_events WHERE event_type = 'auto_top_up.failed' ORDER BY created_at, id"
    )
    assert len(failed) == 3 and '"turned_off": true' in failed[-1]["data"]
    # each failure emailed to the owner (wait for all three: the worker sends them one pass at a time)
    await wait_until(
        lambda: pool.fetchval("SELECT count(*) >= 3 FROM notification_emails WHERE status = 'sent'"), timeout=30
    )
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE transaction_type = 'purchase'"
                               " AND user_id = $1", team.workspace_id) == 1  # fmt: skip


async def test_a_charge_retried_after_a_crash_is_one_payment_and_a_wrong_amount_is_kept_for_review(
    pool, service, fake_stripe, start_service
):
    team = await make_team(pool, credits_="1")
    package = await starter_pack(pool)
    await save_card(service, team, fake_stripe)
    fake_stripe.send_payment_events = False  # the test delivers the webhook itself
    await pool.execute(
        "INSERT INTO auto_top_up_settings (user_id, enabled, threshold, package_id, monthly_limit, payment_method_id,"
        " stripe_customer_id) SELECT $1, true, 1000, $2, 1000, 'pm_card_visa', stripe_customer_id FROM user_credits"
        " WHERE user_id = $1 ON CONFLICT (user_id) DO UPDATE SET enabled = true, threshold = 1000, package_id = $2,"
        " monthly_limit = 1000", team.workspace_id, package)  # fmt: skip
    top_up = await pool.fetchval("SELECT ledger_start_auto_top_up(ledger_lock_user($1))", team.workspace_id)
    row = await pool.fetchrow(
        "SELECT id, user_id, credits, amount_cents, currency, payment_method_id, stripe_customer_id, idempotency_key"
        " FROM auto_top_ups WHERE id = $1", top_up)  # fmt: skip
    client = stripe_client(service.settings)
    assert client is not None
    # a worker charges, dies before recording; the next charges again: Stripe replays the key
    assert await auto_top_up.charge(pool, client, row) == "charged"
    assert await auto_top_up.charge(pool, client, row) == "charged"
    assert len(fake_stripe.payment_intents) == 1
    [intent] = fake_stripe.payment_intents.values()
    wrong = {**intent, "amount": 1, "amount_received": 1}
    assert await fake_stripe.send_event("payment_intent.succeeded", wrong) == 200
    state = await pool.fetchrow("SELECT status, failure_message FROM auto_top_ups WHERE id = $1", top_up)
    assert state["status"] == "review" and "amount 1" in state["failure_message"]
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE transaction_type = 'purchase'"
                               " AND user_id = $1", team.workspace_id) == 1  # fmt: skip


async def test_a_card_saved_for_another_customer_or_without_our_metadata_is_not_kept(pool, service, fake_stripe):
    team = await make_team(pool)
    await save_card(service, team, fake_stripe)  # the wallet has its Stripe customer now
    stored = await pool.fetchval("SELECT payment_method_id FROM auto_top_up_settings")
    foreign = {"id": "seti_x", "object": "setup_intent", "customer": "cus_someone_else", "status": "succeeded",
               "payment_method": "pm_card_stolen", "metadata": {"kind": "auto_top_up",
                                                                "user_id": str(team.workspace_id)}}  # fmt: skip
    assert await fake_stripe.send_event("setup_intent.succeeded", foreign) == 200  # answered, not applied
    theirs = {**foreign, "customer": await pool.fetchval("SELECT stripe_customer_id FROM user_credits"),
              "metadata": {}}  # fmt: skip
    assert await fake_stripe.send_event("setup_intent.succeeded", theirs) == 200
    assert await pool.fetchval("SELECT payment_method_id FROM auto_top_up_settings") == stored
    outcomes = await pool.fetch("SELECT status FROM stripe_events WHERE type = 'setup_intent.succeeded'")
    assert sorted(r["status"] for r in outcomes) == ["ignored", "processed", "rejected"]

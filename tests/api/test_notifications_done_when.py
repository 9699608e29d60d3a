"""Issue 20's "done when", through the real openai SDK and the fake Stripe and Slack: an owner
points a signed webhook and a Slack channel at the workspace, sets a low-balance threshold and auto
top-up; the operator grants expiring promotional credits. Traffic spends the promotion before the
purchased credits, then drains the balance: the email, the signed balance.low and the Slack message
arrive once, the saved card is charged exactly once and the balance is restored when Stripe's
webhook arrives; the promotion's rest expires on its date with a transaction row of its own. (A
failing endpoint, declined cards and a killed service each have their own test.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ledger.money.maintenance import run_once
from tests.accounts.helpers import make_team, outbox_messages
from tests.fake_receivers import ChatServices, WebhookReceiver

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.05)
    return found


@pytest.fixture
def chat() -> Iterator[ChatServices]:
    made = ChatServices().start()
    yield made
    made.stop()


async def test_the_owner_is_told_once_the_card_is_charged_once_and_the_promotion_expires(
    pool, start_service, upstreams, fake_stripe, chat, tmp_path
):
    service = start_service(
        upstreams,
        stripe_secret_key=fake_stripe.secret_key,
        stripe_api_base=fake_stripe.api_base,
        webhook_allow_private_targets=True,
        notify_interval_seconds=0.05,
        maintenance_interval_seconds=0,
        mail_outbox_dir=tmp_path / "outbox",
    )
    fake_stripe.webhook_url = f"{service.url}/webhooks/stripe"
    receiver = WebhookReceiver().start()
    try:
        team = await make_team(pool)
        await pool.execute("UPDATE user_credits SET monthly_allowance = 0 WHERE user_id = $1", team.workspace_id)
        await pool.execute("SELECT add_user_credits($1, 3, 'purchase', 'pi_first_pack')", team.workspace_id)
        # the operator's promotion: 1 credit, spent first, expiring in three days
        expires = datetime.now(UTC) + timedelta(days=3)
        promo = service.admin("POST", f"/admin/users/{team.workspace_id}/credits",
                              json={"amount": "1", "transaction_type": "bonus", "reference": "spring",
                                    "expires_at": expires.isoformat(), "priority": 0})  # fmt: skip
        assert promo.status_code == 200, promo.text

        # the owner's webhook and Slack channel
        events = ["balance.low", "auto_top_up.succeeded"]
        hook = call(service, "POST", f"{ORG}/webhooks", team.admin_key,
                    {"name": "ops", "url": receiver.url, "events": events}).json()  # fmt: skip
        receiver.secrets.append(hook["secret"])
        slack = call(service, "POST", f"{ORG}/notification_channels", team.admin_key,
                     {"name": "money", "type": "slack", "target": f"{chat.base}/services/T1/B1/S1"}).json()  # fmt: skip
        wait_for(lambda: chat.slack)
        code = re.search(r"enter the code (\d{6})", chat.slack[0]["text"])
        assert code is not None
        verified = call(service, "POST", f"{ORG}/notification_channels/{slack['id']}/verify", team.admin_key,
                        {"code": code.group(1)})  # fmt: skip
        assert verified.json()["verified"] is True
        # a low-balance threshold, and auto top-up with a saved card
        call(service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": "2"})
        back = {"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}
        setup = call(service, "POST", f"{ORG}/auto_top_up/card", team.admin_key, back).json()
        assert httpx.post(f"{fake_stripe.api_base}/pay/{setup['id']}", timeout=30).status_code == 303
        package = await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Starter Pack'")
        wanted = {"enabled": True, "threshold": "1.5", "package_id": str(package), "monthly_limit": "500"}
        on = call(service, "POST", f"{ORG}/auto_top_up", team.admin_key, wanted)
        assert on.status_code == 200, on.text

        project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
        key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
        client = service.client(key)
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
        charge = await pool.fetchval("SELECT credits_used FROM llm_usage_log")
        assert charge < 1
        lots = service.get("/v1/credits/balance", key).json()["credits_by_lot"]
        assert [(lot["lot"], Decimal(lot["remaining"])) for lot in lots] == [
            ("grant", 1 - charge),
            ("purchased", Decimal(3)),
        ]  # the promotion went first
        while Decimal(service.get("/v1/credits/balance", key).json()["balance"]) >= Decimal("1.5"):
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
        # told once: the signed webhook, one email, one Slack message
        [low] = receiver.wait_for("balance.low")
        assert low.verified_with == receiver.secrets
        wait_for(lambda: any("balance low" in m["text"] for m in chat.slack))
        outbox = tmp_path / "outbox"
        wait_for(lambda: outbox.exists() and any("balance low" in m for m in outbox_messages(outbox)))
        # charged once, credited by Stripe's signed webhook: the balance is back
        receiver.wait_for("auto_top_up.succeeded")
        assert len(fake_stripe.payment_intents) == 1
        balance = Decimal(service.get("/v1/credits/balance", key).json()["balance"])
        assert balance > 100
        for _ in range(3):
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
        time.sleep(0.3)
        assert len(receiver.of_type("balance.low")) == 1
        assert sum("balance low" in m["text"] for m in chat.slack) == 1
        assert sum("balance low" in m for m in outbox_messages(outbox)) == 1
        assert len(fake_stripe.payment_intents) == 1

        # a second promotion, spent before the purchased credits; its date passes and what is left
        # of it expires with a transaction row of its own
        later = service.admin("POST", f"/admin/users/{team.workspace_id}/credits",
                              json={"amount": "2", "transaction_type": "bonus", "reference": "summer",
                                    "expires_at": expires.isoformat()})  # fmt: skip
        assert later.status_code == 200
        purchased = Decimal(service.get("/v1/credits/balance", key).json()["credits_by_lot"][-1]["remaining"])
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
        lots = service.get("/v1/credits/balance", key).json()["credits_by_lot"]
        assert Decimal(lots[-1]["remaining"]) == purchased  # untouched
        left = Decimal(lots[0]["remaining"])
        assert lots[0]["lot"] == "grant" and 0 < left < 2
        await pool.execute("UPDATE credit_grants SET expires_at = now() - interval '1 second' WHERE remaining > 0")
        assert (await run_once(pool)).grants_expired == 1
        expiry = await pool.fetchrow("SELECT * FROM credit_transactions WHERE transaction_type = 'expiry'")
        assert expiry["amount"] == -left
        after = service.get("/v1/credits/balance", key).json()["credits_by_lot"]
        assert [(lot["lot"], Decimal(lot["remaining"])) for lot in after] == [("purchased", purchased)]
        assert [dict(r) for r in await pool.fetch("SELECT * FROM ledger_reconciliation")] == []
    finally:
        receiver.stop()

"""The notifications page in Chromium: an owner adds a webhook and sees its secret once, a real
receiver verifies the test event with it, the delivery log shows the attempt and sends it again,
and the low-balance threshold and a billing contact are saved (and audited)."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.accounts.helpers import PASSWORD, make_team
from tests.api.web.conftest import screenshot
from tests.fake_receivers import WebhookReceiver


async def test_an_owner_adds_a_webhook_tests_it_replays_it_and_sets_a_low_balance_threshold(pool, start_service, page):
    receiver = WebhookReceiver().start()
    try:
        service = start_service(webhook_allow_private_targets=True, notify_interval_seconds=0.05)
        team = await make_team(pool, credits_="10", roles=("OWNER", "VIEWER"))
        await page.goto(f"{service.url}/dashboard/sign-in")
        await page.locator("#email").fill(team.emails["OWNER"])
        await page.locator("#password").fill(PASSWORD)
        await page.get_by_role("button", name="Continue").click()
        await page.goto(f"{service.url}/dashboard/workspaces")
        await (
            page.locator("form", has=page.locator(f"input[value='{team.workspace_id}']")).get_by_role("button").click()
        )
        await page.goto(f"{service.url}/dashboard/notifications")
        await page.locator("#webhook-name").fill("alerts")
        await page.locator("#webhook-url").fill(receiver.url)
        await page.locator("#webhook-events").fill("balance.low, webhook.test")
        await page.get_by_role("button", name="Add webhook").click()
        secret = await page.locator("#new-secret").inner_text()
        assert secret.startswith("whsec_")
        receiver.secrets.append(secret)
        await screenshot(page, "notifications")
        await page.goto(f"{service.url}/dashboard/notifications")
        await expect(page.locator("#new-secret")).to_have_count(0)  # shown once

        row = page.locator("#webhooks tbody tr").first
        await row.get_by_role("button", name="Send a test").click()
        [test] = receiver.wait_for("webhook.test")
        assert test.verified_with == [secret]
        for _ in range(400):  # the attempt is logged once the receiver's answer came back
            if await pool.fetchval("SELECT count(*) FROM webhook_deliveries"):
                break
            await asyncio.sleep(0.05)
        await page.goto(page.url)
        await expect(page.locator("#deliveries tbody tr")).to_have_count(1)
        await expect(page.locator("#deliveries .answer").first).to_contain_text("200 ok")
        await page.get_by_role("button", name="Send again").click()
        assert len(receiver.wait_for("webhook.test", 2)) == 2

        await page.goto(f"{service.url}/dashboard/notifications")
        await page.locator("#low-balance").fill("2.5")
        await page.get_by_label(team.emails["VIEWER"], exact=False).check()
        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.locator("#low-balance")).to_have_value("2.500000")
        assert await pool.fetchval(
            "SELECT billing_contact FROM workspace_members WHERE user_id = $1 AND workspace_id = $2",
            team.people["VIEWER"],
            team.workspace_id,
        )
        audited = await pool.fetch(
            "SELECT action FROM audit_logs WHERE workspace_id = $1 AND actor_type = 'person'"
            " AND resource_type IN ('webhook', 'wallet', 'member') ORDER BY id",
            team.workspace_id,
        )
        assert [r["action"] for r in audited] == [
            "webhook.created",
            "webhook.test",
            "webhook.replay",
            "wallet.updated",
            "member.updated",
        ]
    finally:
        receiver.stop()

"""The issue's whole journey in Chromium: a person signs up, confirms their email from the outbox,
turns on TOTP, creates a team, invites a developer (who makes a key in a project and a call billed
to the team) and a viewer (who sees usage and can create nothing), and the owner reads it all in
the audit log."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from ledger.money import credits
from tests.accounts.helpers import PASSWORD, outbox_messages
from tests.api.web.conftest import screenshot


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def link_in_last_email(outbox: Path, to: str, path: str) -> str:
    mails = [m for m in outbox_messages(outbox) if f"To: {to}" in m]
    assert mails, f"no email to {to}"
    found = re.search(r"(http://\S+" + re.escape(path) + r"\?token=\S+)", mails[-1])
    assert found is not None, mails[-1]
    return found.group(1)


async def new_page(browser: Browser) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    return await context.new_page()


async def accept_invitation(browser: Browser, outbox: Path, email: str) -> Page:
    page = await new_page(browser)
    await page.goto(link_in_last_email(outbox, email, "/dashboard/invitations/accept"))
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Join the workspace").click()
    await expect(page.get_by_role("status")).to_contain_text("You joined the workspace")
    return page


async def test_a_team_from_sign_up_to_a_billed_call_and_its_audit_log(
    pool, start_service, upstreams, outbox, browser, page
):
    service = start_service(upstreams, mail_outbox_dir=outbox)
    owner_email = f"owner-{uuid.uuid4().hex[:6]}@example.com"

    # sign up, confirm the email from the outbox
    await page.goto(f"{service.url}/dashboard/sign-up")
    await page.get_by_label("Email").fill(owner_email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create the account").click()
    await expect(page.get_by_role("status")).to_contain_text("confirm your email")
    await page.goto(link_in_last_email(outbox, owner_email, "/dashboard/verify-email"))
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_contain_text("Your email address is confirmed")

    # TOTP on
    await page.goto(f"{service.url}/dashboard/security")
    await page.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = await page.locator("#totp-secret").inner_text()
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn two-factor on").click()
    backup_codes = await page.locator("#backup-codes li").all_inner_texts()
    assert len(backup_codes) == 10
    stored = await pool.fetchval("SELECT mfa_secret_encrypted FROM users WHERE email = $1", owner_email)
    assert secret.encode() not in stored

    # a team, a project, two invitations
    await page.goto(f"{service.url}/dashboard/workspaces")
    await page.get_by_label("Name").fill("Acme")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    team_id = await pool.fetchval("SELECT id FROM workspaces WHERE name = 'Acme'")
    await credits.add_user_credits(pool, team_id, "50", "purchase", f"pi_{uuid.uuid4().hex}")
    await page.get_by_label("New project").fill("Search")
    await page.get_by_role("button", name="Create", exact=True).nth(0).click()
    await expect(page.locator("#projects")).to_contain_text("Search")
    for email, role in [("dev@example.com", "developer"), ("viewer@example.com", "viewer")]:
        await page.locator("#invite-email").fill(email)
        await page.locator("#invite-role").select_option(role)
        await page.get_by_role("button", name="Invite").click()
        await expect(page.get_by_role("status")).to_contain_text("Invitation sent")

    # the developer joins, makes a key in Search and calls the API: the team pays
    dev = await accept_invitation(browser, outbox, "dev@example.com")
    await dev.goto(f"{service.url}/dashboard/keys")
    await dev.get_by_label("Project").select_option(label="Search")
    await dev.get_by_role("button", name="Create a key").click()
    key = await dev.locator("#new-key").input_value()
    client = service.client(key)
    client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hi"}])
    row = await pool.fetchrow("SELECT user_id, project_id, credits_used FROM llm_usage_log")
    assert row["user_id"] == team_id and row["credits_used"] > 0
    assert await pool.fetchval("SELECT name FROM projects WHERE id = $1", row["project_id"]) == "Search"
    wallet = await pool.fetchrow(
        "SELECT balance, credits_used_this_month FROM user_credits WHERE user_id = $1", team_id
    )
    # a team made on the dashboard has no free allowance (sql 0020): the purchase paid for it all
    assert Decimal("50") - wallet["balance"] == row["credits_used"]

    # the viewer sees the usage and can create nothing
    viewer = await accept_invitation(browser, outbox, "viewer@example.com")
    await viewer.goto(f"{service.url}/dashboard/usage")
    await expect(viewer.locator("table.usage tbody tr").first).to_contain_text("gpt-4")
    await expect(viewer.get_by_role("link", name="Keys")).to_have_count(0)
    await viewer.goto(f"{service.url}/dashboard/keys")
    await expect(viewer.get_by_role("alert")).to_contain_text("(viewer) may not create and revoke gateway keys")
    await viewer.goto(f"{service.url}/dashboard")
    await expect(viewer.get_by_role("button", name=re.compile("^Buy"))).to_have_count(0)
    await viewer.goto(f"{service.url}/dashboard/team")
    await expect(viewer.locator("#invite-form")).to_have_count(0)
    csrf = await viewer.locator("input[name=csrf]").first.input_value()
    refused = await viewer.request.post(
        f"{service.url}/dashboard/keys", form={"csrf": csrf, "name": "sneaky"}, headers={"origin": service.url}
    )
    assert refused.status == 403
    assert await pool.fetchval("SELECT count(*) FROM gateway_api_keys WHERE user_id = $1", team_id) == 1

    # the owner signs in again (TOTP: a backup code) and reads everything in the audit log
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Email").fill(owner_email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label(re.compile("code")).fill(backup_codes[0])
    await page.get_by_role("button", name="Continue").click()
    await page.goto(f"{service.url}/dashboard/workspaces")
    await page.locator(f"tr[data-workspace-id='{team_id}'] button").click()
    await page.goto(f"{service.url}/dashboard/audit")
    events = await page.locator("#audit td.event").all_inner_texts()
    for wanted in ["workspace.updated", "project.created", "invite.created", "invite.accepted", "member.created",
                   "api_key.created", "login.succeeded"]:  # fmt: skip
        assert wanted in events, (wanted, events)
    audit_text = await page.locator("#audit").inner_text()
    assert "dev@example.com" in audit_text and key not in audit_text
    await screenshot(page, "team-audit-log")
    # the same log through the administration API, with an admin key the owner makes
    await page.goto(f"{service.url}/dashboard/team")
    await page.locator("#admin-key-name").fill("audit reader")
    await page.get_by_role("button", name="Create an admin key").click()
    admin_key = await page.locator("#new-admin-key").inner_text()
    log = httpx.get(
        f"{service.url}/v1/organization/audit_logs", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ).json()
    assert {"api_key.created", "invite.accepted"} <= {event["type"] for event in log["data"]}

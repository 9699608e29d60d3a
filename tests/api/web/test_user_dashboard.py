"""An end user's journeys through /dashboard in Chromium."""

from __future__ import annotations

from decimal import Decimal

from playwright.async_api import Page, expect

from tests.api.web.conftest import screenshot


async def sign_in(page: Page, url: str, key: str) -> None:
    await page.goto(f"{url}/dashboard")
    await page.get_by_label("Your gateway API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Your account")).to_be_visible()


async def test_a_user_signs_in_with_their_key_and_sees_the_balance_the_api_reports(start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="123.456789")
    await sign_in(page, service.url, account.key)
    shown = await page.locator("data#balance").get_attribute("value")
    reported = service.get("/v1/credits/balance", account.key).json()
    assert Decimal(shown) == Decimal(reported["balance"]) == Decimal("123.456789")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["ledger_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["expires"] > 0
    assert account.key not in session["value"]
    await screenshot(page, "user-dashboard")


async def test_a_wrong_key_is_told_plainly_and_gets_no_session(start_service, page):
    service = start_service()
    await page.goto(f"{service.url}/dashboard")
    await page.get_by_label("Your gateway API key").fill("sk-lg-not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong, revoked or expired")
    assert "ledger_session" not in {c["name"] for c in await page.context.cookies()}

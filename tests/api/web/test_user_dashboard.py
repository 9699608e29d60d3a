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


async def test_a_user_buys_a_package_through_stripe_checkout_and_sees_it_credited(
    pool, start_service, fake_stripe, make_account, page
):
    service = start_service(stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)
    fake_stripe.webhook_url = f"{service.url}/webhooks/stripe"
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    await expect(page.locator("#low-balance")).to_be_visible()

    await page.get_by_role("button", name="Buy Value Pack: 500 credits").click()
    await expect(page.get_by_role("heading", name="Pay 45.00 USD")).to_be_visible()
    await page.get_by_role("button", name="Pay 45.00 USD").click()

    # back through Stripe's success URL, signed in still (the SameSite=Strict cookie is sent again
    # once the return page has moved on to the dashboard)
    await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Your payment is being confirmed")
    assert fake_stripe.deliveries == [200]
    shown = Decimal(await page.locator("data#balance").get_attribute("value"))
    assert shown == Decimal(service.get("/v1/credits/balance", account.key).json()["balance"]) == Decimal("505")
    await expect(page.locator("#low-balance")).to_have_count(0)
    purchase = page.locator("table.transactions tbody tr").first
    await expect(purchase).to_contain_text("purchase")
    assert await purchase.locator("data").first.get_attribute("value") == "500.000000"
    await screenshot(page, "user-dashboard-after-purchase")


async def test_a_checkout_given_up_at_stripe_returns_to_the_dashboard_with_nothing_charged(
    start_service, fake_stripe, make_account, page
):
    service = start_service(stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    await page.get_by_role("button", name="Buy Starter Pack: 100 credits").click()
    await page.get_by_role("link", name="Back").click()
    await expect(page.get_by_role("status")).to_contain_text("cancelled; nothing was charged")
    assert Decimal(await page.locator("data#balance").get_attribute("value")) == Decimal("5")

"""An end user's journeys through /dashboard in Chromium."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.api.test_subscription_change import deliver, seed_subscription
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
    await screenshot(page, "user-dashboard-signed-in")


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


async def insert_usage(pool, user_id, count: int, *, model: str = "gpt-4", credits: str = "0.125", error=None):
    """Usage rows written straight into the log (the pages only read it), at one-second steps back."""
    await pool.execute(
        """INSERT INTO llm_usage_log (request_id, user_id, model, provider, prompt_tokens, completion_tokens,
                                      total_tokens, credits_used, success, status_code, error_message, created_at)
           SELECT 'req_page_' || i || '_' || $2, $1, $2, 'openai', 10, 5, 15, $3::numeric, $4::text IS NULL,
                  CASE WHEN $4::text IS NULL THEN 200 ELSE 502 END, $4::text, now() - i * interval '1 second'
             FROM generate_series(1, $5) AS i""",
        user_id,
        model,
        credits,
        error,
        count,
    )


async def test_the_usage_table_pages_through_every_request_and_the_csv_holds_them_all(
    pool, start_service, make_account, page
):
    service = start_service()
    account = await make_account(credits_="50")
    other = await make_account(credits_="50")
    await insert_usage(pool, account.user_id, 120)
    await insert_usage(pool, account.user_id, 1, model='=HYPERLINK("http://evil")', error="-2+3")
    await insert_usage(pool, other.user_id, 7, model="someone-elses-model")
    api_rows = service.get("/v1/usage", account.key, limit=500).json()["data"]
    assert len(api_rows) == 121

    await sign_in(page, service.url, account.key)
    await page.get_by_role("link", name="All requests").click()
    shown: list[str] = []
    while True:
        shown += await page.locator("table.usage tbody tr").evaluate_all("rows => rows.map(r => r.dataset.requestId)")
        older = page.get_by_role("link", name="Older")
        if await older.count() == 0:
            break
        await older.click()
    assert shown == [row["request_id"] for row in api_rows]

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download as CSV").click()
    download = await download_info.value
    text = Path(await download.path()).read_text(encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(text)))
    assert [r["request_id"] for r in records] == [row["request_id"] for row in api_rows]
    assert [Decimal(r["credits_used"]) for r in records] == [Decimal(row["credits_used"]) for row in api_rows]
    # a cell a spreadsheet would run as a formula is quoted; nobody else's request is there
    hostile = next(r for r in records if "HYPERLINK" in r["model"])
    assert hostile["model"].startswith("'=") and hostile["error_message"] == "'-2+3"
    assert "someone-elses-model" not in text


async def test_pages_without_a_session_send_people_to_sign_in_and_a_revoked_key_ends_the_session(
    pool, start_service, make_account, page
):
    service = start_service()
    account = await make_account(credits_="5")
    for path in ("/dashboard", "/dashboard/usage", "/dashboard/transactions", "/dashboard/usage.csv"):
        response = httpx.get(f"{service.url}{path}", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in"
    await sign_in(page, service.url, account.key)
    await pool.execute(
        "UPDATE gateway_api_keys SET is_active = false, revoked_at = now() WHERE id = $1", account.key_id
    )
    await page.reload()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_a_tampered_or_foreign_session_cookie_is_no_session(start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "ledger_session")
    body, _, signature = cookie["value"].partition(".")
    forged = [
        body + "." + signature[:-2] + ("AA" if not signature.endswith("AA") else "BB"),
        body[:-4] + "abcd." + signature,
        "",
        "x" * 5000,
    ]
    for value in forged:
        response = httpx.get(f"{service.url}/dashboard", cookies={"ledger_session": value}, follow_redirects=False)
        assert response.status_code == 303, value[:40]
    # another service's secret signs cookies this one refuses
    elsewhere = start_service()
    response = httpx.get(
        f"{elsewhere.url}/dashboard", cookies={"ledger_session": cookie["value"]}, follow_redirects=False
    )
    assert response.status_code == 303


async def test_the_chart_draws_each_days_credits_per_model_as_the_usage_rows_add_up(
    pool, upstreams, start_service, make_account, page
):
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    client = service.client(account.key)
    for model in ("gpt-4", "gpt-4", "gpt-3.5-turbo"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    # older days, a UTC midnight among them, and a day just outside the 30 shown
    await pool.execute(
        """WITH midnight AS (SELECT date_trunc('day', now(), 'UTC') AS at)
           INSERT INTO llm_usage_log (request_id, user_id, model, credits_used, success, created_at)
           SELECT r.id, $1, r.model, r.credits, r.ok, midnight.at + r.shift
             FROM midnight, (VALUES ('old-1', 'gpt-4', 1.5, true, interval '-3 days'),
                                    ('old-2', 'gpt-4', 0.25, true, interval '-3 days 1 hour'),
                                    ('old-3', 'claude-3-haiku', 2.000001, false, interval '-29 days'),
                                    ('gone', 'gpt-4', 7, true, interval '-30 days' - interval '1 microsecond'))
                  AS r(id, model, credits, ok, shift)""",
        account.user_id,
    )
    rows = service.get("/v1/usage", account.key, limit=500).json()["data"]
    today = datetime.fromisoformat(service.get("/v1/usage/daily", account.key).json()["to"]).date()
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        day = datetime.fromisoformat(row["created_at"]).astimezone(UTC).date()
        if (today - day).days < 30:
            expected[(day.isoformat(), row["model"])] += Decimal(row["credits_used"])

    await sign_in(page, service.url, account.key)
    drawn = await page.evaluate(
        """() => {
            const chart = Chart.getChart(document.getElementById('usage-chart'));
            const datasets = chart.data.datasets.map(d => ({label: d.label, data: d.data}));
            return {labels: chart.data.labels, datasets: datasets};
        }"""
    )
    assert drawn["labels"] == [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    points = {
        (label, dataset["label"]): Decimal(repr(value))
        for dataset in drawn["datasets"]
        for label, value in zip(drawn["labels"], dataset["data"], strict=True)
        if value
    }
    assert points == dict(expected)
    assert {dataset["label"] for dataset in drawn["datasets"]} == {"gpt-4", "gpt-3.5-turbo", "claude-3-haiku"}
    await screenshot(page, "user-dashboard")


async def test_a_user_creates_a_key_that_is_shown_once_and_revokes_it(start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_label("Name (optional)").first.fill("laptop")
    await page.get_by_role("button", name="Create a key").click()
    new_key = await page.get_by_label("Key laptop").input_value()
    assert new_key.startswith("sk-lg-")
    assert service.get("/v1/credits/balance", new_key).status_code == 200
    await screenshot(page, "user-keys")

    await page.reload()  # the key is not shown again
    assert new_key not in await page.content()
    await page.get_by_role("button", name=f"Revoke {new_key[:12]}").click()
    await expect(page.get_by_role("status")).to_contain_text("Key revoked")
    assert service.get("/v1/credits/balance", new_key).status_code == 401
    assert service.get("/v1/credits/balance", account.key).status_code == 200


async def test_a_user_adds_a_provider_key_sees_only_its_hint_and_deletes_it(start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    await page.goto(f"{service.url}/dashboard/keys")
    await page.get_by_label("Provider", exact=True).select_option("demo")
    await page.get_by_label("The provider's API key").fill("sk-my-own-provider-key-9876")
    await page.get_by_role("button", name="Add the key").click()
    await expect(page.get_by_role("status")).to_contain_text("Provider key added")
    row = page.locator("table.provider-keys tbody tr").first
    await expect(row).to_contain_text("...9876")
    assert "sk-my-own-provider-key" not in await page.content()
    listed = service.get("/v1/provider-keys", account.key).json()["data"]
    assert [(k["provider"], k["key_hint"]) for k in listed] == [("demo", "...9876")]

    await page.get_by_role("button", name="Delete demo key").click()
    await expect(page.get_by_role("status")).to_contain_text("Provider key deleted")
    assert service.get("/v1/provider-keys", account.key).json()["data"] == []


async def test_a_user_changes_their_power_level(start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    await page.get_by_label("Requests run at").select_option("eco")
    await page.get_by_role("button", name="Change", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Power level changed")
    assert service.get("/v1/credits/balance", account.key).json()["power_level"] == "eco"

    csrf = await page.locator("form[action='/dashboard/power-level'] input[name=csrf]").input_value()
    refused = await page.request.post(
        f"{service.url}/dashboard/power-level", form={"csrf": csrf, "power_level": "warp"}, max_redirects=0
    )
    assert refused.status == 400 and "Known power levels: eco, balanced, precision" in await refused.text()
    assert service.get("/v1/credits/balance", account.key).json()["power_level"] == "eco"


async def test_a_subscriber_changes_tier_and_the_page_follows_stripes_webhook(
    pool, start_service, fake_stripe, make_account, page
):
    service = start_service(stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)
    account = await make_account(credits_="5")
    subscription = await seed_subscription(service, fake_stripe, pool, account, "starter")
    await sign_in(page, service.url, account.key)
    await expect(page.locator("#tier")).to_have_text("starter")

    await page.get_by_role("button", name="Change to Professional").click()
    await expect(page.get_by_role("status")).to_contain_text("once Stripe confirms it")
    changed = fake_stripe.subscriptions[subscription["id"]]
    assert changed["metadata"]["tier"] == "professional"
    await expect(page.locator("#tier")).to_have_text("starter")  # Stripe has not said so yet

    deliver(service, "customer.subscription.updated", changed)
    await page.reload()
    await expect(page.locator("#tier")).to_have_text("professional")
    assert service.get("/v1/credits/balance", account.key).json()["tier"] == "professional"


async def test_a_subscribe_button_left_open_in_a_tab_is_refused_once_a_subscription_is_paid(
    pool, start_service, fake_stripe, make_account, page
):
    service = start_service(stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    subscribe = page.get_by_role("button", name="Subscribe to Professional")
    await expect(subscribe).to_be_visible()
    # meanwhile, from another tab, the user subscribed and Stripe's webhook said so
    await seed_subscription(service, fake_stripe, pool, account, "starter")
    calls = list(fake_stripe.calls)

    async with page.expect_response(lambda r: r.url.endswith("/dashboard/subscribe")) as answered:
        await subscribe.click()

    assert (await answered.value).status == 409
    await expect(page.locator("body")).to_contain_text("already have a starter subscription")
    await expect(page.locator("body")).to_contain_text("POST /v1/subscriptions/change")
    assert fake_stripe.calls == calls and fake_stripe.sessions == {}, "nothing reached Stripe"
    assert await pool.fetchval("SELECT count(*) FROM stripe_subscriptions WHERE user_id = $1", account.user_id) == 1


USER_PAGES = ("/dashboard", "/dashboard/usage", "/dashboard/transactions", "/dashboard/keys")


async def test_every_user_page_labels_its_fields_and_scopes_its_headers(pool, start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await insert_usage(pool, account.user_id, 3)
    await page.goto(f"{service.url}/dashboard/sign-in")
    await screenshot(page, "user-sign-in")
    # signed in from the keyboard alone: the key field has the focus, Enter sends it
    await page.keyboard.type(account.key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    for path in USER_PAGES:
        await page.goto(f"{service.url}{path}")
        unlabelled = await page.locator("input:not([type=hidden]), select").evaluate_all(
            "els => els.filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
        )
        unscoped = await page.locator("th").evaluate_all(
            "ths => ths.filter(th => !['col', 'row'].includes(th.getAttribute('scope'))).map(th => th.outerHTML)"
        )
        assert (unlabelled, unscoped) == ([], []), path
        await screenshot(page, "user-page" + path.replace("/", "-"))


async def test_the_user_pages_fit_a_phone_and_read_without_javascript(pool, browser, start_service, make_account):
    service = start_service()
    account = await make_account(credits_="42.5")
    await insert_usage(pool, account.user_id, 3, model="a-model-with-a-rather-long-name-that-wraps")
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False
    )
    phone = await context.new_page()
    await sign_in(phone, service.url, account.key)
    for path in USER_PAGES:
        await phone.goto(f"{service.url}{path}")
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390, path
    await phone.goto(f"{service.url}/dashboard")
    assert await phone.locator("data#balance").inner_text() == "42.5"
    # the chart's numbers are a table too (folded under it): today's 3 x 0.125 credits of that model
    today = phone.locator("#usage-chart-table tbody tr").last
    cell = today.locator("td[data-series='a-model-with-a-rather-long-name-that-wraps']")
    assert await cell.text_content() == "0.375"
    await context.close()


async def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(pool, start_service, make_account, page):
    service = start_service()
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    copied = next(c["value"] for c in await page.context.cookies() if c["name"] == "ledger_session")
    # a session signed out of long ago that has expired since: signing out prunes it
    await pool.execute(
        "INSERT INTO dashboard_sign_outs (nonce, expires_at) VALUES ('an-old-expired-session', now() - interval '1 s')"
    )

    await page.get_by_role("button", name="Sign out").click()

    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "ledger_session" not in {c["name"] for c in await page.context.cookies()}
    replayed = httpx.get(f"{service.url}/dashboard", cookies={"ledger_session": copied}, follow_redirects=False)
    assert replayed.status_code == 303 and replayed.headers["location"] == "/dashboard/sign-in"
    assert await pool.fetchval("SELECT count(*) FROM dashboard_sign_outs") == 1
    # the key itself still works, and signs in afresh
    await sign_in(page, service.url, account.key)


async def test_stripe_sends_people_back_under_the_public_url_whatever_host_a_request_named(
    start_service, fake_stripe, make_account, page
):
    service = start_service(
        stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base, public_url="https://billing.example.com/"
    )
    account = await make_account(credits_="5")
    await sign_in(page, service.url, account.key)
    csrf = await page.locator("form[action='/dashboard/buy'] input[name=csrf]").first.input_value()
    package = await page.locator("form[action='/dashboard/buy'] input[name=package_id]").first.input_value()
    cookie = next(c["value"] for c in await page.context.cookies() if c["name"] == "ledger_session")

    response = httpx.post(
        f"{service.url}/dashboard/buy",
        data={"csrf": csrf, "package_id": package},
        cookies={"ledger_session": cookie},
        headers={"Host": "evil.example"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    (session,) = fake_stripe.sessions.values()
    assert session["success_url"] == "https://billing.example.com/dashboard/return?checkout=done"
    assert session["cancel_url"] == "https://billing.example.com/dashboard/return?checkout=cancelled"


def test_an_unknown_dashboard_page_or_method_is_a_page_and_the_apis_stay_json(start_service):
    service = start_service()
    for method, path, status in (
        ("GET", "/dashboard/no-such-page", 404),
        ("PUT", "/dashboard", 405),
        ("GET", "/admin/dashboard/nothing/here", 404),
    ):
        response = httpx.request(method, f"{service.url}{path}")
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "content-security-policy" in response.headers, path
    api = httpx.get(f"{service.url}/v1/no-such-endpoint")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{service.url}/dashboards").json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("balance", "allowance", "warned"),
    [
        ("5", "0", True),
        ("9.999999", "0", True),
        ("10", "0", False),
        ("0", "100", False),
        ("4", "5", True),
        ("0", None, False),
    ],
)
async def test_the_low_balance_warning_counts_what_is_left_to_spend(
    start_service, make_account, page, balance, allowance, warned
):
    service = start_service()
    account = await make_account(credits_=balance, monthly_allowance=allowance)
    await sign_in(page, service.url, account.key)
    await expect(page.locator("#low-balance")).to_have_count(1 if warned else 0)

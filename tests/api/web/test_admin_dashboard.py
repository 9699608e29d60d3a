"""The operator's journeys through /admin/dashboard in Chromium, and the page handlers' refusals
over plain HTTP where no browser is needed."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from playwright.async_api import Page, expect

from api.web import charts
from api.web.admin_pages import grant_amount
from api.web.pages import PageError
from api.web.sessions import SessionSigner
from ledger.money.credits import add_user_credits
from ledger.ops import find_query
from tests.api.conftest import ADMIN_TOKEN
from tests.api.ledger_state import balance
from tests.api.web.conftest import screenshot
from tests.fake_stripe import event
from tests.psql import psql
from tests.test_ops import seeded  # noqa: F401 (the fixture: users, purchases, usage, holds, Stripe)

SUCCESS = {"success_url": "https://app.example/ok", "cancel_url": "https://app.example/cancel"}
ROOT = "/admin/dashboard"


@pytest.fixture
def service(upstreams, start_service, fake_stripe):
    return start_service(upstreams, stripe_secret_key="sk_test_123", stripe_api_base=fake_stripe.api_base)


async def buy(pool, service, fake_stripe, account, package: str, payment_intent: str, refunded: int = 0) -> None:
    """A purchase the way it really happens: Checkout through the API, then Stripe's webhooks."""
    package_id = await pool.fetchval("SELECT id FROM credit_packages WHERE name = $1", package)
    started = service.post("/v1/credits/checkout", account.key, {"package_id": str(package_id), **SUCCESS})
    assert started.status_code == 201, started.text
    session = fake_stripe.sessions[started.json()["id"]]
    paid = {**session, "status": "complete", "payment_status": "paid", "payment_intent": payment_intent}
    assert service.webhook(event("checkout.session.completed", paid)).json()["status"] == "processed"
    if refunded:
        charge = {
            "id": f"ch_{payment_intent}",
            "object": "charge",
            "payment_intent": payment_intent,
            "amount": session["amount_total"],
            "amount_refunded": refunded,
            "refunded": refunded == session["amount_total"],
        }
        assert service.webhook(event("charge.refunded", charge)).json()["status"] == "processed"


def ops_rows(database_url: str, name: str) -> list[list[str]]:
    out = psql(database_url, file=find_query(name).path)
    return [line.split("|") for line in out.splitlines() if line]


async def sign_in(page: Page, url: str, token: str = ADMIN_TOKEN) -> None:
    await page.goto(f"{url}{ROOT}")
    await page.get_by_label("The admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Operator's overview")).to_be_visible()


def signed_in_client(url: str, token: str = ADMIN_TOKEN) -> httpx.Client:
    """An HTTP client holding an admin session, signed in through the form as a browser does."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    form = client.get(f"{ROOT}/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert form.status_code == 200 and csrf
    done = client.post(f"{ROOT}/sign-in", data={"csrf": csrf[1], "token": token})
    assert done.status_code == 303 and done.headers["location"] == ROOT, done.text
    return client


def page_csrf(client: httpx.Client, path: str) -> str:
    shown = client.get(path)
    assert shown.status_code == 200, shown.text
    found = re.search(r'name="csrf" value="([^"]+)"', shown.text)
    assert found
    return found[1]


def grant_form(csrf: str | None, amount: str, **extra: str) -> dict[str, str]:
    fields = {
        "transaction_type": "bonus",
        "amount": amount,
        "reason": "goodwill",
        "reference": f"dashboard-{uuid.uuid4().hex}",
    }
    if csrf is not None:
        fields["csrf"] = csrf
    return {**fields, **extra}


async def test_the_operator_sees_this_months_revenue_as_revenue_by_package_counts_it(
    pool, database_url, service, fake_stripe, make_account, page
):
    alice, bob = await make_account(), await make_account()
    await buy(pool, service, fake_stripe, alice, "Value Pack", "pi_a1", refunded=1500)
    await buy(pool, service, fake_stripe, bob, "Value Pack", "pi_b1")
    await buy(pool, service, fake_stripe, bob, "Starter Pack", "pi_b2")
    expected = ops_rows(database_url, "revenue_by_package")
    assert len(expected) == 2  # the test is about something: two packages sold this month

    await sign_in(page, service.url)

    shown = []
    for row in await page.locator("#revenue-this-month tbody tr").all():
        cell = {
            column: await row.locator(f'[data-column="{column}"] data').get_attribute("value")
            for column in ("charged_cents", "refunded_cents", "net_cents", "credits_sold", "credits_refunded")
        }
        shown.append(
            [
                await row.get_attribute("data-package"),
                await row.get_attribute("data-currency"),
                cell["charged_cents"],
                cell["refunded_cents"],
                cell["net_cents"],
                Decimal(cell["credits_sold"]),
                Decimal(cell["credits_refunded"]),
            ]
        )
    assert shown == [[r[0], r[1], r[3], r[4], r[5], Decimal(r[7]), Decimal(r[8])] for r in expected]
    # Value Pack: 2 x 4500 cents charged, 1500 refunded, by Decimal arithmetic independent of the SQL
    value_pack = next(r for r in shown if r[0] == "Value Pack")
    assert value_pack[2:5] == [str(2 * 4500), "1500", str(2 * 4500 - 1500)]
    await expect(page.locator("#revenue-this-month")).to_contain_text("75.00 USD")
    await expect(page.locator(".banner-bad")).to_have_count(0)
    await expect(page.locator("#reconciliation-ok")).to_be_visible()


# Each overview table and the ops query it shows: the columns its <data> values are, in order
OPS_TABLES = {
    "revenue-this-month": ("revenue_by_package", [3, 4, 5, 7, 8, 9]),
    "revenue-by-month": ("revenue_by_month", [4, 5, 6, 8]),
    "spend-by-model": ("spend_by_model_30d", [2, 3, 5, 6]),
    "spend-by-provider": ("spend_by_provider", [3, 4, 6, 7]),
    "spend-by-power-level": ("spend_by_power_level", [2, 3, 5, 6]),
    "top-users": ("top_users_30d", [3, 5, 6]),
    "low-balance": ("low_balance_users", [1, 3, 4]),
    "credits-sold-vs-used": ("credits_sold_vs_used", [1, 2, 3, 4, 5, 6]),
    "failed-requests": ("failed_requests", [4]),
    "holds": ("holds", [3]),
}


async def test_every_overview_table_and_chart_reads_as_its_ops_query_through_psql(
    database_url,
    seeded,  # noqa: F811 (the fixture imported above)
    service,
    page,
):
    await sign_in(page, service.url)

    for table_id, (name, columns) in OPS_TABLES.items():
        expected = [[Decimal(row[i]) for i in columns if row[i] != ""] for row in ops_rows(database_url, name)]
        assert expected, f"{name}: the seeded ledger has rows for it, or this compares nothing"
        shown = [
            [Decimal(v) for v in await row.locator("data").evaluate_all("els => els.map(e => e.value)")]
            for row in await page.locator(f"#{table_id} tbody tr").all()
        ]
        assert shown == expected, table_id
    for event_id in [row[0] for row in ops_rows(database_url, "stripe_events")]:
        await expect(page.locator("#stripe-events tbody")).to_contain_text(event_id)

    # the usage chart's table: each (day, model) of usage_by_day_30d, and zero on every other cell
    usage = {(row[0], row[1]): Decimal(row[3]) for row in ops_rows(database_url, "usage_by_day_30d")}
    assert usage
    cells = await page.locator("#usage-chart-table td[data-series]").evaluate_all(
        "tds => tds.map(td => [td.parentElement.querySelector('th').textContent, td.dataset.series, td.textContent])"
    )
    assert len(cells) == 30 * len({model for _, model in usage})
    assert {(day, model): Decimal(text.replace(",", "")) for day, model, text in cells if text != "0"} == usage
    # the revenue chart of each currency: each (month, package) of revenue_by_month's net amount
    revenue = {(row[0][:7], row[1]): Decimal(row[7]) for row in ops_rows(database_url, "revenue_by_month")}
    assert revenue
    cells = await page.locator("#revenue-chart-usd-table td[data-series]").evaluate_all(
        "tds => tds.map(td => [td.parentElement.querySelector('th').textContent, td.dataset.series, td.textContent])"
    )
    assert len(cells) == 12 * len({package for _, package in revenue})
    assert {
        (month, package): Decimal(text.replace(",", "")) for month, package, text in cells if text != "0"
    } == revenue
    await screenshot(page, "admin-dashboard")


async def test_a_broken_ledger_raises_the_red_banner(pool, service, make_account, page):
    account = await make_account(credits_="50")
    await sign_in(page, service.url)
    await expect(page.locator(".banner-bad")).to_have_count(0)

    # a change no ledger function would make: a transaction's amount edited behind its back
    await pool.execute("ALTER TABLE credit_transactions DISABLE TRIGGER credit_transactions_append_only")
    await pool.execute("UPDATE credit_transactions SET amount = amount + 1 WHERE user_id = $1", account.user_id)
    await page.reload()

    banner = page.get_by_role("alert").filter(has_text="does not reconcile")
    await expect(banner).to_be_visible()
    assert "banner-bad" in (await banner.get_attribute("class") or "")
    await expect(page.locator("#reconciliation tbody")).to_contain_text(str(account.user_id))
    await expect(page.locator("#reconciliation tbody")).to_contain_text("balance_mismatch")


async def test_a_wrong_token_is_told_plainly_and_gets_no_session(service, page):
    await page.goto(f"{service.url}{ROOT}")
    await page.get_by_label("The admin token").fill("not-the-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not the admin token")
    assert "ledger_admin_session" not in {c["name"] for c in await page.context.cookies()}
    await page.goto(f"{service.url}{ROOT}")
    await expect(page.get_by_label("The admin token")).to_be_visible()


async def test_the_session_cookie_is_httponly_strict_and_holds_no_token(service, page):
    await sign_in(page, service.url)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["ledger_admin_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == ROOT
    assert ADMIN_TOKEN not in session["value"]


def test_rotating_the_admin_token_ends_the_session(start_service):
    secret = "s" * 40
    before = start_service(session_secret=secret)
    client = signed_in_client(before.url)
    cookie = client.cookies["ledger_admin_session"]
    same_token = start_service(session_secret=secret)
    rotated = start_service(session_secret=secret, admin_token="a-new-admin-token")

    kept = httpx.get(f"{same_token.url}{ROOT}", cookies={"ledger_admin_session": cookie})
    ended = httpx.get(f"{rotated.url}{ROOT}", cookies={"ledger_admin_session": cookie})

    assert kept.status_code == 200 and "Operator's overview" in kept.text
    assert ended.status_code == 303 and ended.headers["location"] == f"{ROOT}/sign-in"


def test_without_an_admin_token_the_dashboard_is_off(start_service):
    service = start_service(admin_token=None)
    for path in (ROOT, f"{ROOT}/sign-in", f"{ROOT}/users/{uuid.uuid4()}"):
        response = httpx.get(f"{service.url}{path}")
        assert response.status_code == 404 and "LEDGER_ADMIN_TOKEN" in response.text
    refused = httpx.post(f"{service.url}{ROOT}/sign-in", data={"token": "", "csrf": "x"})
    assert refused.status_code == 404


async def test_a_bonus_granted_on_the_user_page_moves_the_balance_by_exactly_that(service, make_account, pool, page):
    account = await make_account(credits_="10.5")
    before = Decimal(service.admin("GET", f"/admin/users/{account.user_id}").json()["balance"])
    await sign_in(page, service.url)
    await page.get_by_label("User id, or the start of one of their keys").fill(str(account.user_id))
    await page.get_by_label("User id, or the start of one of their keys").press("Enter")
    await expect(page.get_by_role("heading", name=f"User {account.user_id}")).to_be_visible()
    await screenshot(page, "admin-user")

    await page.get_by_label("Kind").select_option("bonus")
    await page.get_by_label("Credits").fill("12.345678")
    await page.get_by_label("Reason").fill("sorry for the outage")
    await page.get_by_label("Reason").press("Enter")  # sent from the keyboard

    await expect(page.get_by_role("status")).to_have_text("Bonus granted.")
    after = Decimal(service.admin("GET", f"/admin/users/{account.user_id}").json()["balance"])
    assert after - before == Decimal("12.345678")
    assert Decimal(await page.locator("data#balance").get_attribute("value")) == after
    (row,) = await pool.fetch(
        "SELECT amount, description FROM credit_transactions WHERE user_id = $1 AND transaction_type = 'bonus'"
        " AND description = 'sorry for the outage'",
        account.user_id,
    )
    assert row["amount"] == Decimal("12.345678")


async def test_a_key_revoked_on_the_user_page_is_refused_by_the_api(service, make_account, page):
    account = await make_account(credits_="5")
    assert service.get("/v1/credits/balance", account.key).status_code == 200
    await sign_in(page, service.url)
    # the whole key pasted: only its visible prefix is looked for
    await page.get_by_label("User id, or the start of one of their keys").fill(account.key)
    await page.get_by_label("User id, or the start of one of their keys").press("Enter")
    await expect(page.get_by_role("heading", name=f"User {account.user_id}")).to_be_visible()

    await page.get_by_role("button", name=re.compile("^Revoke key")).click()

    await expect(page.get_by_role("status")).to_have_text("Key revoked.")
    await expect(page.locator(f'tr[data-key-id="{account.key_id}"]')).to_contain_text("revoked")
    assert service.get("/v1/credits/balance", account.key).status_code == 401


async def test_a_form_without_its_token_or_from_another_site_changes_nothing(service, make_account, pool):
    account = await make_account(credits_="20")
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)

    no_token = client.post(f"{user_path}/credits", data=grant_form(None, "5"))
    wrong_token = client.post(f"{user_path}/credits", data=grant_form("forged", "5"))
    other_site = client.post(
        f"{user_path}/credits", data=grant_form(csrf, "5"), headers={"origin": "https://evil.example"}
    )
    revoke = client.post(
        f"{user_path}/keys/{account.key_id}/revoke", data={}, headers={"origin": "https://evil.example"}
    )
    tier = client.post(f"{user_path}/tier", data={"tier": "enterprise"})

    for response in (no_token, wrong_token, other_site, revoke, tier):
        assert response.status_code == 403, response.text
    assert await balance(pool, account.user_id) == 20
    assert service.get("/v1/credits/balance", account.key).status_code == 200
    assert service.admin("GET", f"/admin/users/{account.user_id}").json()["tier"] == "trial"
    # the same form with its token from our own page does go through: the refusals were the checks'
    done = client.post(f"{user_path}/credits", data=grant_form(csrf, "5"), headers={"origin": service.url})
    assert done.status_code == 303 and await balance(pool, account.user_id) == 25


@pytest.mark.parametrize(
    "amount",
    ["1e3", "1E2", "inf", "-inf", "nan", "Infinity", "abc", "", "1,5", "0x10", " ", "0", "1.1234567", "9" * 20],
)
async def test_a_grant_of_anything_but_a_plain_decimal_is_a_400_and_writes_nothing(service, make_account, pool, amount):
    account = await make_account(credits_="20")
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)
    count = await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE user_id = $1", account.user_id)

    response = client.post(f"{user_path}/credits", data=grant_form(csrf, amount, transaction_type="admin_adjustment"))

    assert response.status_code == 400
    assert "amount" in response.text.lower()
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE user_id = $1", account.user_id) == count


async def test_refusals_of_the_user_page(service, make_account, pool):
    account, other = await make_account(credits_="20"), await make_account()
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)

    too_much = client.post(
        f"{user_path}/credits", data=grant_form(csrf, "-20.000001", transaction_type="admin_adjustment")
    )
    negative_bonus = client.post(f"{user_path}/credits", data=grant_form(csrf, "-1"))
    no_reason = client.post(f"{user_path}/credits", data=grant_form(csrf, "1", reason="  "))
    others_key = client.post(f"{user_path}/keys/{other.key_id}/revoke", data={"csrf": csrf})
    unknown_tier = client.post(f"{user_path}/tier", data={"csrf": csrf, "tier": "no-such-tier"})
    unknown_level = client.post(f"{user_path}/power-level", data={"csrf": csrf, "power_level": "warp"})

    assert too_much.status_code == 409 and "cannot cover removing 20.000001 credits" in too_much.text
    assert negative_bonus.status_code == 400 and no_reason.status_code == 400
    assert others_key.status_code == 404 and service.get("/v1/credits/balance", other.key).status_code == 200
    assert unknown_tier.status_code in (400, 404) and unknown_level.status_code == 400
    assert await balance(pool, account.user_id) == 20
    for path in (f"{ROOT}/users/not-a-uuid", f"{ROOT}/users/{uuid.uuid4()}", f"{ROOT}/users/{uuid.uuid4()}/usage"):
        missing = client.get(path)
        assert missing.status_code == 404 and "<h1>" in missing.text, path
    # an adjustment the balance covers does go through, by exactly its amount
    exact = client.post(f"{user_path}/credits", data=grant_form(csrf, "-19.5", transaction_type="admin_adjustment"))
    assert exact.status_code == 303 and await balance(pool, account.user_id) == Decimal("0.5")


async def test_every_field_has_a_label_and_every_header_a_scope(page, database_url, seeded, service):  # noqa: F811
    await sign_in(page, service.url)
    for path in (ROOT, f"{ROOT}/users/{seeded['alice']}", f"{ROOT}/users/{seeded['alice']}/usage"):
        await page.goto(f"{service.url}{path}")
        unlabelled = await page.locator("input:not([type=hidden]), select").evaluate_all(
            "els => els.filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
        )
        unscoped = await page.locator("th").evaluate_all(
            "ths => ths.filter(th => !['col', 'row'].includes(th.getAttribute('scope'))).map(th => th.outerHTML)"
        )
        assert (unlabelled, unscoped) == ([], []), path
        assert await page.locator("input:not([type=hidden]), select").count() > 0
        await screenshot(page, "admin-page" + path.replace(str(seeded["alice"]), "alice").replace("/", "-"))


async def test_the_pages_fit_a_phone(browser, database_url, seeded, service):  # noqa: F811
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = await context.new_page()
    await sign_in(phone, service.url)
    for path in (ROOT, f"{ROOT}/users/{seeded['alice']}"):
        await phone.goto(f"{service.url}{path}")
        # wide tables scroll inside their own box; the page itself never scrolls sideways
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390, path
    await context.close()


async def test_tier_and_power_level_changed_on_the_user_page_are_what_the_admin_api_reports(service, make_account):
    account = await make_account()
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)

    tier = client.post(f"{user_path}/tier", data={"csrf": csrf, "tier": "enterprise"})
    level = client.post(f"{user_path}/power-level", data={"csrf": csrf, "power_level": "eco"})

    assert tier.status_code == level.status_code == 303
    assert tier.headers["location"] == f"{user_path}?notice=tier"
    reported = service.admin("GET", f"/admin/users/{account.user_id}").json()
    assert (reported["tier"], reported["power_level"], reported["monthly_allowance"]) == ("enterprise", "eco", None)


async def test_a_users_transactions_page_by_page(service, make_account, pool):
    account = await make_account()
    for i in range(51):
        await add_user_credits(pool, account.user_id, "1", "bonus", f"paging-{i}")
    client = signed_in_client(service.url)
    path = f"{ROOT}/users/{account.user_id}/transactions"

    first = client.get(path)
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert first.status_code == 200 and older
    second = client.get(older[1])

    ids = [re.findall(r'data-transaction-id="(\d+)"', page.text) for page in (first, second)]
    assert [len(i) for i in ids] == [50, 1] and not set(ids[0]) & set(ids[1])
    assert 'rel="next"' not in second.text
    assert client.get(f"{path}?after=x").status_code == 400


async def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(service, page):
    await sign_in(page, service.url)
    copied = next(c["value"] for c in await page.context.cookies() if c["name"] == "ledger_admin_session")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("The admin token")).to_be_visible()
    assert "ledger_admin_session" not in {c["name"] for c in await page.context.cookies()}
    await page.goto(f"{service.url}{ROOT}")
    await expect(page.get_by_label("The admin token")).to_be_visible()
    replayed = httpx.get(f"{service.url}{ROOT}", cookies={"ledger_admin_session": copied}, follow_redirects=False)
    assert replayed.status_code == 303 and replayed.headers["location"] == f"{ROOT}/sign-in"


def test_pages_need_an_admin_session_made_with_the_current_token(start_service):
    secret = "s" * 40
    service = start_service(session_secret=secret)
    signer = SessionSigner(secret.encode())
    current = signer.fingerprint(ADMIN_TOKEN)
    refused = {
        "none": None,
        "forged": "e30.bad",
        "a user's session": signer.issue("user", current, None, 600),
        "another token's": signer.issue("admin", signer.fingerprint("old-token"), None, 600),
        "expired": signer.issue("admin", current, None, 600, now=0),
    }
    for path in (ROOT, f"{ROOT}/users/{uuid.uuid4()}"):
        for what, cookie in refused.items():
            response = httpx.get(
                f"{service.url}{path}", cookies={} if cookie is None else {"ledger_admin_session": cookie}
            )
            assert response.status_code == 303 and response.headers["location"] == f"{ROOT}/sign-in", what
    # the same cookie made with the current token is let in: the refusals were the checks'
    good = httpx.get(
        f"{service.url}{ROOT}", cookies={"ledger_admin_session": signer.issue("admin", current, None, 600)}
    )
    assert good.status_code == 200


async def test_finding_a_user(service, make_account):
    one, two = await make_account(), await make_account()
    client = signed_in_client(service.url)
    csrf = page_csrf(client, ROOT)

    by_id = client.post(f"{ROOT}/find", data={"csrf": csrf, "q": f" {one.user_id} "})
    by_key = client.post(f"{ROOT}/find", data={"csrf": csrf, "q": two.key})
    too_short = client.post(f"{ROOT}/find", data={"csrf": csrf, "q": "sk-lg-"})
    many = client.post(f"{ROOT}/find", data={"csrf": csrf, "q": "sk-lg-"[:6] + two.key[6:8]})
    no_token = client.post(f"{ROOT}/find", data={"q": str(one.user_id)})

    assert by_id.headers["location"] == f"{ROOT}/users/{one.user_id}"
    assert by_key.headers["location"] == f"{ROOT}/users/{two.user_id}"
    assert too_short.status_code == 400 and no_token.status_code == 403
    assert many.status_code in (200, 303) and two.key[12:] not in many.text


PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{0,22})?", fullmatch=True),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.floats().map(repr),
    ),
    st.sampled_from(["bonus", "admin_adjustment"]),
)
def test_a_grant_amount_is_taken_only_as_a_plain_nonzero_decimal(text, kind):
    """Accepted exactly when the text is digits with an optional sign and fraction (20 digits
    each at most), not zero, and not negative for a bonus; then it is that decimal exactly."""
    plain = PLAIN.fullmatch(text)
    acceptable = (
        plain is not None
        and len(plain[2]) <= 20
        and (plain[3] is None or len(plain[3]) <= 20)
        and Decimal(text) != 0
        and (kind == "admin_adjustment" or not plain[1])
    )
    try:
        amount = grant_amount(text, kind)
    except PageError as exc:
        assert exc.status == 400 and not acceptable
    else:
        assert acceptable and amount.is_finite() and amount == Decimal(text)


@pytest.mark.parametrize(
    ("kind", "amount", "change"), [("bonus", "5", 5), ("admin_adjustment", "-2.5", Decimal("-2.5"))]
)
async def test_a_grant_form_sent_twice_grants_once(service, make_account, pool, kind, amount, change):
    account = await make_account(credits_="10")
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    form = grant_form(page_csrf(client, user_path), amount, transaction_type=kind)

    first, again = (client.post(f"{user_path}/credits", data=form) for _ in range(2))

    assert first.status_code == again.status_code == 303
    assert await balance(pool, account.user_id) == 10 + change


def test_the_monthly_chart_spans_twelve_months_across_a_new_year_with_zeros_filled():
    rows = [
        {"month": datetime.date(2025, 12, 1), "package": "A", "net_amount": Decimal("3.50")},
        {"month": datetime.date(2025, 2, 1), "package": "B", "net_amount": Decimal("1")},
        {"month": datetime.date(2025, 1, 1), "package": "A", "net_amount": Decimal("99")},  # 13 months back
    ]

    chart = charts.by_month(rows, datetime.date(2026, 1, 31), 12, key="package", value="net_amount")

    assert chart.labels == [f"2025-{m:02d}" for m in range(2, 13)] + ["2026-01"]
    assert chart.series == {"A": [0] * 10 + [Decimal("3.50"), 0], "B": [Decimal(1)] + [0] * 11}


async def test_a_grant_the_balance_cannot_hold_is_a_400_page_without_the_databases_words(service, make_account, pool):
    account = await make_account(credits_="35")
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)

    response = client.post(f"{user_path}/credits", data=grant_form(csrf, "99999999999999.999999"))

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers and response.headers["cache-control"] == "no-store"
    assert "beyond what the ledger can store" in response.text and "precision" not in response.text
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", account.user_id) == 35


async def test_provider_costs_are_shown_with_every_digit_the_ops_query_gives(service, make_account, pool):
    account = await make_account(credits_="5")
    await pool.execute(
        """INSERT INTO llm_usage_log (request_id, user_id, model, provider, credits_used, cost_usd, success)
           VALUES ('cost-digits', $1, 'digits-model', 'openai', 0.000205, 0.0000205, true)""",
        account.user_id,
    )
    client = signed_in_client(service.url)

    page_text = client.get(ROOT).text

    rows = re.findall(r"<tr>\s*<t[hd][^>]*>digits-model</t[hd]>(.*?)</tr>", page_text, re.S)
    assert any("0.0000205<" in row for row in rows), rows


async def test_a_grant_with_an_expiry_and_a_priority_is_a_lot_and_bad_terms_are_400s(service, make_account, pool):
    account = await make_account(credits_="0")
    client = signed_in_client(service.url)
    user_path = f"{ROOT}/users/{account.user_id}"
    csrf = page_csrf(client, user_path)
    expires = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    for bad in [{"expires_at": "soon"}, {"priority": "101"}, {"priority": "-1"}, {"expires_at": "2020-01-01T00:00"}]:
        refused = client.post(f"{user_path}/credits", data=grant_form(csrf, "5", **bad))
        assert refused.status_code == 400, (bad, refused.status_code)
    assert await pool.fetchval("SELECT count(*) FROM credit_grants") == 0
    done = client.post(f"{user_path}/credits", data=grant_form(csrf, "5", expires_at=expires, priority="7"))
    assert done.status_code == 303
    lot = await pool.fetchrow("SELECT priority, expires_at, remaining FROM credit_grants")
    assert lot["priority"] == 7 and lot["remaining"] == 5
    assert lot["expires_at"].strftime("%Y-%m-%dT%H:%M") == expires

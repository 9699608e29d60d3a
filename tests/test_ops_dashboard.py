"""The operator dashboard's ops queries, each against figures the test computes itself (Decimal),
with rows placed on the UTC month and day boundaries relative to the database's now(), and on a
leap-year month end on a server whose clock the test sets (tests/clock.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.money import accounts as users
from ledger.money.credits import add_user_credits, debit_user_credits, refund_purchased_credits
from ledger.ops import fetch_ops
from tests.psql import psql
from tests.test_ops import metered, rows

MICROSECOND = timedelta(microseconds=1)
REVENUE_COLUMNS = 10  # revenue_by_package's columns; revenue_by_month has month before them


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    year, month0 = divmod(moment.year * 12 + moment.month - 1 - months_back, 12)
    return utc(year, month0 + 1, 1)


async def db_now(db: asyncpg.Pool) -> datetime:
    now: datetime = await db.fetchval("SELECT now()")
    return now.astimezone(UTC)


async def pay(
    db,
    user,
    intent,
    at,
    *,
    cents=1000,
    refunded=0,
    credits="100",
    currency="usd",
    status="paid",
    package=None,
    credits_refunded="0",
):
    await db.execute(
        """INSERT INTO stripe_payments (payment_intent_id, user_id, package_id, credits, amount_cents, currency,
                                        status, refunded_cents, credits_refunded, paid_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        intent,
        user,
        package,
        Decimal(credits),
        cents,
        currency,
        status,
        refunded,
        Decimal(credits_refunded),
        at,
    )


async def usage(db, user, model, at, credits="0", cost="0", *, success=True):
    await db.execute(
        """INSERT INTO llm_usage_log (request_id, user_id, model, provider, credits_used, cost_usd, success,
                                      created_at)
           VALUES ($1, $2, $3, 'openai', $4, $5, $6, $7)""",
        f"req_{uuid.uuid4().hex}",
        user,
        model,
        Decimal(credits),
        Decimal(cost),
        success,
        at,
    )


async def test_revenue_by_month_places_payments_on_utc_month_boundaries(pool, database_url, make_user):
    user = await make_user()
    value_pack = await pool.fetchval("SELECT id FROM credit_packages WHERE name = 'Value Pack'")
    now = await db_now(pool)
    this, last, first = month_start(now), month_start(now, 1), month_start(now, 11)
    await pay(
        pool,
        user,
        "pi_this",
        this,
        cents=4500,
        refunded=1500,
        credits="500",
        credits_refunded="166.666667",
        status="partially_refunded",
        package=value_pack,
    )
    await pay(pool, user, "pi_this_eur", this + timedelta(hours=1), cents=4200, currency="eur", package=value_pack)
    await pay(pool, user, "pi_this_none", this + timedelta(hours=2), cents=700, credits="70")
    await pay(pool, user, "pi_review", this, cents=999, status="review", package=value_pack)
    await pay(pool, user, "pi_pending", this, cents=999, status="pending", package=value_pack)
    await pay(pool, user, "pi_last_1", this - MICROSECOND, cents=1000, package=value_pack)
    await pay(pool, user, "pi_last_2", last, cents=2000, refunded=2000, status="refunded", package=value_pack)
    await pay(pool, user, "pi_first", first, cents=300, package=value_pack)
    await pay(pool, user, "pi_too_old", first - MICROSECOND, cents=5, package=value_pack)

    got = await fetch_ops(pool, "revenue_by_month")

    def row(month, package, currency, n, charged, refunded, credits, credits_refunded):
        net = charged - refunded
        return (
            month.date(),
            package,
            currency,
            n,
            charged,
            refunded,
            net,
            (Decimal(net) / 100).quantize(Decimal("0.01")),
            Decimal(credits),
            Decimal(credits_refunded),
            Decimal(0),
        )

    assert [tuple(r.values()) for r in got] == [
        row(this, "Value Pack", "eur", 1, 4200, 0, "100", "0"),
        row(this, "Value Pack", "usd", 1, 4500, 1500, "500", "166.666667"),
        row(this, "(no package)", "usd", 1, 700, 0, "70", "0"),
        row(last, "Value Pack", "usd", 2, 3000, 2000, "200", "0"),
        row(first, "Value Pack", "usd", 1, 300, 0, "100", "0"),
    ]
    # this month's rows are revenue_by_package's, column for column as psql prints them
    by_month = rows(database_url, "revenue_by_month")
    assert [r[1:] for r in by_month if r[0] == this.date().isoformat()] == rows(database_url, "revenue_by_package")
    assert all(len(r) == REVENUE_COLUMNS + 1 for r in by_month)
    # the months are UTC's whatever the session's time zone (New York's steps through daylight saving)
    new_york = f"{database_url}?options=-c%20TimeZone%3DAmerica/New_York"
    assert rows(new_york, "revenue_by_month") == by_month


PAYMENTS = st.lists(
    st.tuples(
        st.sampled_from(["this", "first"]),  # near this month's start, or the 12-month window's
        st.sampled_from([-1, 0, 1]) | st.integers(-(40 * 86_400 * 10**6), 40 * 86_400 * 10**6),  # microseconds
        st.sampled_from(["paid", "partially_refunded", "refunded", "pending", "review"]),
        st.sampled_from(["usd", "eur"]),
        st.sampled_from(["Value Pack", "Starter Pack", None]),
        st.integers(1, 10**6),
        st.floats(0, 1),  # the share refunded
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(PAYMENTS)
def test_revenue_by_month_counts_each_payment_once_in_its_utc_month(database_url, payments):
    """Any payments: each counted (not pending, not under review, in the 12 months) in its own UTC
    month, package and currency; this month's rows are revenue_by_package's, in its order."""

    async def example() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():  # one now() for the inserts and both queries; rolled back
                await check(conn)
                raise Rollback
        except Rollback:
            pass
        finally:
            await conn.close()

    async def check(conn: asyncpg.Connection) -> None:
        user = await conn.fetchval("SELECT user_id FROM create_ledger_user(NULL, 'trial')")
        packages = {r["name"]: r["id"] for r in await conn.fetch("SELECT id, name FROM credit_packages")}
        now = await db_now(conn)
        this, first = month_start(now), month_start(now, 11)
        expected: dict[tuple[date, str, str], list[Decimal]] = {}
        for number, (anchor, offset, status, currency, package, cents, share) in enumerate(payments):
            paid_at = min((this if anchor == "this" else first) + timedelta(microseconds=offset), now)
            refunded = int(cents * share)
            await pay(
                conn,
                user,
                f"pi_{number}",
                paid_at,
                cents=cents,
                refunded=refunded,
                currency=currency,
                status=status,
                package=packages[package] if package else None,
                credits="1",
            )
            if status in ("pending", "review") or paid_at < first:
                continue
            key = (month_start(paid_at).date(), package or "(no package)", currency)
            sums = expected.setdefault(key, [Decimal(0)] * 4)
            for i, value in enumerate((1, cents, refunded, cents - refunded)):
                sums[i] += value

        by_month = await fetch_ops(conn, "revenue_by_month")
        this_month = await fetch_ops(conn, "revenue_by_package")

        assert {
            (r["month"], r["package"], r["currency"]): [
                r["purchases"],
                r["charged_cents"],
                r["refunded_cents"],
                r["net_cents"],
            ]
            for r in by_month
        } == expected
        assert all(r["net_amount"] == (r["net_cents"] / Decimal(100)).quantize(Decimal("0.01")) for r in by_month)
        assert [tuple(r.values())[1:] for r in by_month if r["month"] == this.date()] == [
            tuple(r.values()) for r in this_month
        ]

    asyncio.run(example())


class Rollback(Exception):
    pass


@pytest.fixture
async def clock_db(clock_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(clock_database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.mark.parametrize(
    ("now", "payments"),
    [
        (  # just past midnight on March 1st of a leap year: February had 29 days
            utc(2028, 3, 1),
            [
                (utc(2028, 3, 1), date(2028, 3, 1)),
                (utc(2028, 2, 29, 23, 59, 59), date(2028, 2, 1)),
                (utc(2028, 3, 1) - MICROSECOND, date(2028, 2, 1)),
                (utc(2027, 4, 1), date(2027, 4, 1)),  # the 12th month back
                (utc(2027, 4, 1) - MICROSECOND, None),
            ],
        ),
        (  # on the leap day itself, an hour before the month ends
            utc(2028, 2, 29, 23),
            [
                (utc(2028, 2, 29, 22, 59, 59), date(2028, 2, 1)),
                (utc(2028, 2, 1), date(2028, 2, 1)),
                (utc(2028, 2, 1) - MICROSECOND, date(2028, 1, 1)),
                (utc(2027, 3, 1), date(2027, 3, 1)),
                (utc(2027, 3, 1) - MICROSECOND, None),
            ],
        ),
    ],
    ids=["2028-03-01 00:00 UTC", "2028-02-29 23:00 UTC"],
)
async def test_revenue_by_month_on_a_leap_year_month_end(clock, clock_db, clock_database_url, now, payments):
    clock.set(now)
    user = await clock_db.fetchval("SELECT user_id FROM create_ledger_user(NULL, 'trial')")
    for number, (paid_at, _) in enumerate(payments):
        await pay(clock_db, user, f"pi_{number}", paid_at, cents=10**number)

    got = {(r[0], r[4]) for r in rows(clock_database_url, "revenue_by_month")}
    this_month = rows(clock_database_url, "revenue_by_package")

    expected: dict[date, int] = {}
    for number, (_, month) in enumerate(payments):
        if month is not None:
            expected[month] = expected.get(month, 0) + 10**number
    assert got == {(month.isoformat(), str(cents)) for month, cents in expected.items()}
    assert [r[3] for r in this_month] == [str(expected[now.date().replace(day=1)])]


async def test_credits_sold_vs_used_by_month(pool, make_user):
    """Sold 500; granted 20 + 5; taken back 3 (an operator) + 50 (a refund); 60 + 70 used by
    metered requests, the allowance of 100 first (60, then 40), the balance for the other 30."""
    user = await make_user(monthly_allowance=100)
    await add_user_credits(pool, user, "500", "purchase", "pi_sold")
    await add_user_credits(pool, user, "20", "bonus", None, "welcome")
    await add_user_credits(pool, user, "5", "admin_adjustment", None, "goodwill")
    await debit_user_credits(pool, user, "3", "admin_adjustment", None, "correction")
    await refund_purchased_credits(pool, user, "50", "ch_1:refunded:500")
    await metered(pool, user, model="gpt-4", provider="openai", power_level="balanced", credits="60", cost="1")
    await metered(pool, user, model="gpt-4", provider="openai", power_level="eco", credits="70", cost="1")
    now = await db_now(pool)
    this, last, too_old = month_start(now), month_start(now, 1), month_start(now, 11) - MICROSECOND
    await usage(pool, user, "m", this, "4")  # an unmetered usage row: used, but from neither source
    await usage(pool, user, "m", this - MICROSECOND, "9")
    await usage(pool, user, "m", too_old, "1000")

    got = [tuple(r.values()) for r in await fetch_ops(pool, "credits_sold_vs_used")]

    assert got == [
        (this.date(), Decimal(500), Decimal(25), Decimal(53), Decimal(60 + 70 + 4), Decimal(100), Decimal(30)),
        (last.date(), 0, 0, 0, Decimal(9), 0, 0),
    ]
    assert [r["credits_used"] for r in await fetch_ops(pool, "credits_sold_vs_used")] == [134, 9]


async def test_top_users_by_credits_used_in_30_days(pool):
    now = await db_now(pool)
    ann = (await users.create_user(pool, "ann@example.com", tier="starter"))["user_id"]
    ben = (await users.create_user(pool, "ben@example.com"))["user_id"]
    cid = (await users.create_user(pool, None))["user_id"]
    await add_user_credits(pool, ben, "12.5", "bonus")
    await usage(pool, ann, "a", now - timedelta(days=29), "10", "1.25")
    await usage(pool, ann, "b", now - timedelta(minutes=5), "5", "0.5")
    await usage(pool, ann, "a", now - timedelta(days=31), "1000", "100")  # older than 30 days
    await usage(pool, ben, "a", now - timedelta(hours=1), "12", "2")
    await usage(pool, cid, "a", now - timedelta(hours=2), "0", "0", success=False)
    for _ in range(25):  # users with no request in 30 days are not ranked
        await users.create_user(pool, None)

    got = [tuple(r.values()) for r in await fetch_ops(pool, "top_users_30d")]

    assert got == [
        (ann, "ann@example.com", "starter", Decimal(0), 2, Decimal(15), Decimal("1.75"), now - timedelta(minutes=5)),
        (ben, "ben@example.com", "trial", Decimal("12.5"), 1, Decimal(12), Decimal(2), now - timedelta(hours=1)),
        (cid, None, "trial", Decimal(0), 1, Decimal(0), Decimal(0), now - timedelta(hours=2)),
    ]


async def test_top_users_is_the_top_20(pool):
    now = await db_now(pool)
    for n in range(1, 23):
        user = (await users.create_user(pool, f"u{n}@example.com"))["user_id"]
        await usage(pool, user, "a", now, str(n))

    got = await fetch_ops(pool, "top_users_30d")

    assert [r["email"] for r in got] == [f"u{n}@example.com" for n in range(22, 2, -1)]


async def test_spend_by_model_over_24_hours_and_30_days(pool, make_user):
    user = await make_user()
    now = await db_now(pool)
    await usage(pool, user, "m1", now - timedelta(hours=1), "2", "0.2")
    await usage(pool, user, "m1", now - timedelta(hours=25), "3", "0.3")
    await usage(pool, user, "m1", now - timedelta(days=29), "4", "0.4")
    await usage(pool, user, "m1", now - timedelta(days=31), "100", "10")
    await usage(pool, user, "m2", now - timedelta(hours=2), "1", "0.1")
    await usage(pool, user, "m3", now - timedelta(days=2), "0.5", "0.05")

    got = [tuple(r.values()) for r in await fetch_ops(pool, "spend_by_model_30d")]

    d = Decimal
    assert got == [
        ("m1", 1, d(2), d("0.2"), 3, d(2 + 3 + 4), d("0.9")),
        ("m2", 1, d(1), d("0.1"), 1, d(1), d("0.1")),
        ("m3", 0, 0, 0, 1, d("0.5"), d("0.05")),
    ]


async def test_usage_by_day_places_requests_on_utc_days(pool, make_user, database_url):
    user = await make_user()
    now = await db_now(pool)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=29)
    await usage(pool, user, "a", today, "1", "0.1")
    await usage(pool, user, "b", today, "2", "0.2")
    await usage(pool, user, "a", today, "0.5", "0.05")
    await usage(pool, user, "a", today - MICROSECOND, "3", "0.3")
    await usage(pool, user, "a", first, "4", "0.4")
    await usage(pool, user, "a", first - MICROSECOND, "100", "10")

    got = [tuple(r.values()) for r in await fetch_ops(pool, "usage_by_day_30d")]

    d = Decimal
    assert got == [
        (first.date(), "a", 1, d(4), d("0.4")),
        ((today - MICROSECOND).date(), "a", 1, d(3), d("0.3")),
        (today.date(), "b", 1, d(2), d("0.2")),
        (today.date(), "a", 2, d("1.5"), d("0.15")),
    ]
    kiritimati = f"{database_url}?options=-c%20TimeZone%3DPacific/Kiritimati"
    assert psql(kiritimati, sql="SHOW TimeZone").strip() == "Pacific/Kiritimati"
    assert [r[0] for r in rows(kiritimati, "usage_by_day_30d")] == [str(r[0]) for r in got]


async def test_credits_sold_vs_used_across_a_leap_day_midnight(clock, clock_db):
    """Bought 100 and used 30 on Feb 29 at 23:00, bought 50 and used 120 just after midnight: the
    trial's 100-credit cycle (begun Feb 29) has 70 left in March, so 50 comes from the balance."""
    clock.set(utc(2028, 2, 29, 23))
    user = await clock_db.fetchval("SELECT user_id FROM create_ledger_user(NULL, 'trial')")
    await add_user_credits(clock_db, user, "100", "purchase", "pi_feb")
    await metered(clock_db, user, model="m", provider="openai", power_level="eco", credits="30", cost="0.3")
    clock.set(utc(2028, 3, 1))
    await add_user_credits(clock_db, user, "50", "purchase", "pi_mar")
    await metered(clock_db, user, model="m", provider="openai", power_level="balanced", credits="120", cost="1.2")

    got = [tuple(r.values()) for r in await fetch_ops(clock_db, "credits_sold_vs_used")]

    assert got == [
        (date(2028, 3, 1), Decimal(50), 0, 0, Decimal(120), Decimal(70), Decimal(50)),
        (date(2028, 2, 1), Decimal(100), 0, 0, Decimal(30), Decimal(30), Decimal(0)),
    ]

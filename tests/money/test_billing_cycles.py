"""Billing cycles at month ends, leap years, long idles and in any session time zone, on a
PostgreSQL whose clock the test sets (tests/clock.py): one definition of the current cycle
(an anchor kept like Stripe's, month arithmetic in UTC) shared by writers, maintenance and reads."""

from __future__ import annotations

import asyncio
import calendar
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger.money.accounts import get_account, set_user_tier
from ledger.money.credits import get_quota_usage_percentage
from tests.clock import ClockServer, ServerClock, add_months, create_clock_database, drop_clock_database

HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
async def db(clock_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(clock_database_url, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()


async def new_user(
    db: asyncpg.Pool | asyncpg.Connection, clock: ServerClock, at: datetime, tier: str = "trial"
) -> uuid.UUID:
    """A user created at `at`. The server's clock keeps ticking after clock.set, so the cycle start
    is then pinned to `at` exactly (a start written by hand becomes the anchor)."""
    clock.set(at)
    user = await db.fetchval("SELECT user_id FROM create_ledger_user(NULL, $1)", tier)
    await db.execute("UPDATE user_credits SET billing_cycle_start = $2 WHERE user_id = $1", user, at)
    return user


async def debit(db: asyncpg.Executor, user: uuid.UUID, amount: object, reference: str | None = None) -> bool:
    reference = reference or f"req_{uuid.uuid4().hex}"
    return await db.fetchval(
        "SELECT success FROM debit_user_credits($1, $2, 'usage', $3)", user, Decimal(str(amount)), reference
    )


async def row(db: asyncpg.Pool, user: uuid.UUID) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM user_credits WHERE user_id = $1", user)


async def allowance_drawn(db: asyncpg.Pool, user: uuid.UUID, since: datetime) -> Decimal:
    return await db.fetchval(
        "SELECT coalesce(sum(allowance_used), 0) FROM credit_transactions"
        " WHERE user_id = $1 AND transaction_type = 'usage' AND created_at >= $2",
        user,
        since,
    )


async def test_a_trial_user_created_on_oct_31_draws_at_most_100_credits_on_nov_30(db, clock):
    user = await new_user(db, clock, utc(2026, 10, 31, 10))
    clock.set(utc(2026, 11, 30, 11))  # Oct 31 + 1 month = Nov 30: the new cycle has begun

    results = []
    for _ in range(20):
        results.append(await debit(db, user, 10))
        await db.fetchval("SELECT roll_billing_cycles(1000)")  # maintenance between the requests

    assert results.count(True) == 10, "10 x 10 credits is the 100-credit allowance; the balance is 0"
    assert await allowance_drawn(db, user, utc(2026, 11, 30)) == 100
    state = await row(db, user)
    assert state["billing_cycle_start"] == utc(2026, 11, 30, 10)
    assert state["credits_used_this_month"] == 100


@pytest.mark.parametrize(("year", "february"), [(2028, 29), (2027, 28)], ids=["leap year 2028", "common year 2027"])
async def test_a_jan_31_anchor_is_kept_through_shorter_months(db, clock, year, february):
    user = await new_user(db, clock, utc(year, 1, 31, 10))
    await debit(db, user, 30)
    starts = [
        utc(year, 2, february, 10),
        utc(year, 3, 31, 10),
        utc(year, 4, 30, 10),
        utc(year, 5, 31, 10),
        utc(year, 6, 30, 10),
    ]
    previous = utc(year, 1, 31, 10)
    for start in starts:
        clock.set(start - HOUR)  # still the previous cycle: what was used stays used
        assert await debit(db, user, 1)
        before = await row(db, user)
        assert before["billing_cycle_start"] == previous
        assert before["credits_used_this_month"] > 1

        clock.set(start + HOUR)
        assert await debit(db, user, 30)
        after = await row(db, user)
        assert after["billing_cycle_start"] == start, "the anchor day is kept, clamped to the month's end"
        assert after["credits_used_this_month"] == 30, "reset once for the new cycle"
        assert after["billing_cycle_anchor"] == utc(year, 1, 31, 10)
        previous = start


async def test_a_feb_29_anchor_comes_back_on_the_29th(db, clock):
    user = await new_user(db, clock, utc(2028, 2, 29, 12))
    expected = [
        utc(2028, 3, 29, 12),
        utc(2028, 4, 29, 12),
        utc(2029, 2, 28, 12),  # no Feb 29 in 2029
        utc(2029, 3, 29, 12),  # and the 29th again after it
        utc(2032, 2, 29, 12),
    ]
    for start in expected:
        clock.set(start + timedelta(minutes=5))
        await debit(db, user, 1)
        assert (await row(db, user))["billing_cycle_start"] == start


async def test_a_cycle_rolls_over_the_year_end(db, clock):
    user = await new_user(db, clock, utc(2026, 12, 31, 23, 30))
    await debit(db, user, 70)
    clock.set(utc(2027, 1, 31, 23, 45))
    assert await debit(db, user, 50)
    assert (await row(db, user))["billing_cycle_start"] == utc(2027, 1, 31, 23, 30)
    assert (await row(db, user))["credits_used_this_month"] == 50
    clock.set(utc(2027, 2, 28, 23, 31))
    account = await get_account(db, user)
    assert account["billing_cycle_start"] == utc(2027, 2, 28, 23, 30)
    assert account["allowance_resets_at"] == utc(2027, 3, 31, 23, 30)
    assert account["allowance_remaining"] == 100


async def test_a_user_idle_for_27_months_rolls_straight_to_the_current_cycle(db, clock):
    user = await new_user(db, clock, utc(2026, 10, 31, 10))
    await debit(db, user, 80)
    clock.set(utc(2029, 1, 31, 10, 30))  # 27 months on

    account = await get_account(db, user)
    assert await debit(db, user, 100)
    assert not await debit(db, user, 1), "one allowance for the current cycle, not one per missed month"

    assert account["billing_cycle_start"] == utc(2029, 1, 31, 10) and account["allowance_remaining"] == 100
    state = await row(db, user)
    assert state["billing_cycle_start"] == utc(2029, 1, 31, 10) and state["credits_used_this_month"] == 100
    assert await db.fetchval("SELECT roll_billing_cycles(1000)") == 0


# DST switch dates: New York (2027-03-14, 2027-11-07), Lord Howe's half hour (2027-04-04,
# 2027-10-03), and an anchor whose local date is not its UTC date.
ZONES = ["UTC", "America/New_York", "Australia/Lord_Howe", "Europe/London", "Pacific/Kiritimati"]
ANCHORS = [
    utc(2027, 1, 31, 3),  # Jan 30 22:00 in New York: local arithmetic would give Feb 28 22:00 local
    utc(2027, 2, 14, 6, 30),
    utc(2027, 3, 4, 15, 15),
    utc(2027, 10, 31, 1, 30),
    utc(2028, 2, 29, 23, 59, 59),
]


@pytest.mark.parametrize("zone", ZONES)
async def test_the_session_time_zone_does_not_change_the_cycles(clock_database_url, clock, zone):
    conn = await asyncpg.connect(clock_database_url, server_settings={"TimeZone": zone})
    try:
        for anchor in ANCHORS:
            for months in range(0, 14):
                at = add_months(anchor, months) + timedelta(seconds=1)
                start, end = await conn.fetchrow(
                    "SELECT ledger_cycle_start($1, $2), ledger_cycle_end($1, $2)", anchor, at
                )
                assert (start, end) == (add_months(anchor, months), add_months(anchor, months + 1)), (zone, anchor)

        # a writer in that zone rolls a Jan 31 03:00 UTC anchor to Feb 28 03:00 UTC
        user = await new_user(conn, clock, ANCHORS[0])
        clock.set(utc(2027, 2, 28, 4))
        assert await debit(conn, user, 100)
        assert await conn.fetchval("SELECT billing_cycle_start FROM user_credits WHERE user_id = $1", user) == utc(
            2027, 2, 28, 3
        )
    finally:
        await conn.close()


async def test_maintenance_and_writers_reset_a_cycle_once(db, clock):
    user = await new_user(db, clock, utc(2027, 1, 31, 10))
    await debit(db, user, 90)
    clock.set(utc(2027, 2, 28, 11))

    assert await db.fetchval("SELECT roll_billing_cycles(1000)") == 1
    assert await debit(db, user, 60)
    assert await db.fetchval("SELECT roll_billing_cycles(1000)") == 0
    assert await debit(db, user, 40)
    assert not await debit(db, user, 1)
    state = await row(db, user)
    assert state["credits_used_this_month"] == 100 and state["billing_cycle_start"] == utc(2027, 2, 28, 10)


async def waits_on_a_lock(db: asyncpg.Pool) -> None:
    for _ in range(500):
        if await db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second call never waited on the user's lock")


@pytest.mark.parametrize("first", ["maintenance", "writer"])
async def test_a_maintenance_run_racing_a_writer_resets_once(db, clock, first):
    user = await new_user(db, clock, utc(2026, 10, 31, 10))
    await debit(db, user, 100)
    clock.set(utc(2026, 11, 30, 10, 30))

    async with db.acquire() as a, db.acquire() as b:
        transaction = a.transaction()
        await transaction.start()
        if first == "maintenance":
            assert await a.fetchval("SELECT roll_billing_cycles(1000)") == 1
            other = asyncio.create_task(debit(b, user, 70))
        else:
            assert await debit(a, user, 70)
            other = asyncio.create_task(b.fetchval("SELECT roll_billing_cycles(1000)"))
        await waits_on_a_lock(db)
        await transaction.commit()
        second = await other

    assert second == (True if first == "maintenance" else 0), "the second one finds the cycle rolled already"
    state = await row(db, user)
    assert state["credits_used_this_month"] == 70 and state["billing_cycle_start"] == utc(2026, 11, 30, 10)
    assert not await debit(db, user, "30.000001")


async def test_reads_of_an_ended_cycle_report_what_the_next_writer_will_do(db, clock):
    user = await new_user(db, clock, utc(2026, 10, 31, 10))
    await debit(db, user, 80)

    clock.set(utc(2026, 11, 30, 9))
    before = await get_account(db, user)
    quota_before = await get_quota_usage_percentage(db, user)
    clock.set(utc(2026, 11, 30, 11))
    after = await get_account(db, user)
    quota_after = await get_quota_usage_percentage(db, user)
    stored = await row(db, user)
    reserved = await db.fetchrow("SELECT * FROM reserve_credits($1, 100, 'req_hold')", user)

    assert (before["allowance_remaining"], before["credits_used_this_month"], quota_before) == (20, 80, 80)
    assert before["billing_cycle_start"] == utc(2026, 10, 31, 10)
    assert before["allowance_resets_at"] == utc(2026, 11, 30, 10)
    assert stored["credits_used_this_month"] == 80, "a read writes nothing"
    assert (after["allowance_remaining"], after["credits_used_this_month"], quota_after) == (100, 0, 0)
    assert after["billing_cycle_start"] == utc(2026, 11, 30, 10)
    assert after["allowance_resets_at"] == utc(2026, 12, 31, 10)
    assert reserved["success"] and reserved["available"] == 0, "the writer agrees: exactly 100 to hold"


async def test_set_user_tier_starts_a_cycle_only_from_a_newer_start(db, clock):
    user = await new_user(db, clock, utc(2026, 11, 10, 8))
    clock.set(utc(2026, 11, 25, 8))
    await debit(db, user, 60)

    older = await set_user_tier(db, user, "starter", utc(2026, 11, 1, 8))
    equal = await set_user_tier(db, user, "starter", utc(2026, 11, 10, 8))
    newer = await set_user_tier(db, user, "professional", utc(2026, 11, 20, 8))
    await debit(db, user, 5)
    replayed = await set_user_tier(db, user, "professional", utc(2026, 11, 20, 8))
    tier_only = await set_user_tier(db, user, "starter")

    assert (older["tier"], older["monthly_allowance"], older["credits_used_this_month"]) == ("starter", 1000, 60)
    assert older["billing_cycle_start"] == utc(2026, 11, 10, 8), "an older period never moves the cycle back"
    assert (equal["credits_used_this_month"], equal["billing_cycle_start"]) == (60, utc(2026, 11, 10, 8))
    assert (newer["tier"], newer["credits_used_this_month"]) == ("professional", 0)
    assert newer["billing_cycle_start"] == newer["billing_cycle_anchor"] == utc(2026, 11, 20, 8)
    assert (replayed["credits_used_this_month"], replayed["billing_cycle_start"]) == (5, utc(2026, 11, 20, 8))
    assert (tier_only["tier"], tier_only["credits_used_this_month"]) == ("starter", 5)

    clock.set(utc(2026, 12, 20, 9))
    assert (await get_account(db, user))["billing_cycle_start"] == utc(2026, 12, 20, 8), "cycles follow the anchor"


async def test_a_late_invoice_for_a_cycle_rolled_since_resets_nothing(db, clock):
    user = await new_user(db, clock, utc(2026, 10, 15, 8), tier="starter")
    clock.set(utc(2026, 12, 20, 8))  # the cycle of Dec 15 is current but not rolled yet
    await debit(db, user, 400)

    late = await set_user_tier(db, user, "starter", utc(2026, 11, 15, 8))

    assert (late["billing_cycle_start"], late["credits_used_this_month"]) == (utc(2026, 12, 15, 8), 400)


@pytest.mark.parametrize("start", [utc(2026, 12, 1), datetime.max.replace(tzinfo=UTC)])
async def test_a_cycle_start_far_ahead_is_refused(db, clock, start):
    user = await new_user(db, clock, utc(2026, 11, 10, 8))
    with pytest.raises(errors.InvalidBillingCycle):
        await set_user_tier(db, user, "starter", start)
    assert (await row(db, user))["tier"] == "trial"


async def test_a_start_written_by_hand_becomes_the_anchor(db, clock):
    user = await new_user(db, clock, utc(2027, 1, 31, 10))
    clock.set(utc(2027, 2, 28, 11))
    await debit(db, user, 1)  # rolled along the grid: the anchor stays Jan 31
    assert (await row(db, user))["billing_cycle_anchor"] == utc(2027, 1, 31, 10)

    await db.execute("UPDATE user_credits SET billing_cycle_start = '2027-02-10 00:00+00' WHERE user_id = $1", user)

    assert (await row(db, user))["billing_cycle_anchor"] == utc(2027, 2, 10)
    with pytest.raises(asyncpg.PostgresError, match="finite") as raised:
        await db.execute("UPDATE user_credits SET billing_cycle_start = 'infinity' WHERE user_id = $1", user)
    assert raised.value.sqlstate == "LG012"


# -- the definition as a property -----------------------------------------------------------------

ANCHOR_DAYS = st.one_of(st.integers(1, 28), st.sampled_from([29, 30, 31]))


@st.composite
def anchors(draw: st.DrawFn) -> datetime:
    year = draw(st.integers(1990, 2100))
    month = draw(st.integers(1, 12))
    day = min(draw(ANCHOR_DAYS), calendar.monthrange(year, month)[1])
    if draw(st.booleans()) and calendar.isleap(year):
        month, day = 2, 29
    return datetime(
        year,
        month,
        day,
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        draw(st.sampled_from([0, 1, 999_999])),
        tzinfo=UTC,
    )


TIMES = st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.just(UTC))


def test_the_cycle_containing_any_time_tiles_the_calendar(clock_server: ClockServer) -> None:
    url = create_clock_database(clock_server)
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(url))
    query = """
        SELECT ledger_cycle_index($1, $2) AS k, ledger_cycle_start($1, $2) AS start, ledger_cycle_end($1, $2) AS end,
               ledger_cycle_start($1, ledger_cycle_end($1, $2)) AS next_start,
               ledger_cycle_end($1, ledger_cycle_start($1, $2) - interval '1 microsecond') AS previous_end
    """

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(anchor=anchors(), at=TIMES, zone=st.sampled_from(ZONES))
    def check(anchor: datetime, at: datetime, zone: str) -> None:
        loop.run_until_complete(conn.execute(f"SET TimeZone = '{zone}'"))
        got = loop.run_until_complete(conn.fetchrow(query, anchor, at))
        k = got["k"]
        assert got["start"] <= at < got["end"]
        assert got["start"] == add_months(anchor, k), "start is anchor + k months, clamped"
        assert got["end"] == add_months(anchor, k + 1)
        assert got["next_start"] == got["end"] and got["previous_end"] == got["start"], "no gap, no overlap"
        assert got["end"] - got["start"] >= timedelta(days=28)

    try:
        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
        drop_clock_database(clock_server, url)

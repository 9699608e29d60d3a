"""GET /v1/usage/daily: the caller's credits per UTC day and model, exactly the sum of their usage
rows on each day, and nobody else's (the dashboard's chart is drawn from it)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import asyncpg
import httpx
import openai
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

MESSAGES = [{"role": "user", "content": "Hi " + "0123456789" * 100}]
# byte order and a linguistic collation disagree on these ("Zeta" < "a-model" < "émodel" in bytes)
MODELS = ["gpt-4", "a-model", "Zeta", "émodel", "gpt-4o"]
DAY_MICROSECONDS = 86_400_000_000
TODAY_SQL = "SELECT (now() AT TIME ZONE 'UTC')::date"
INSERT_USAGE = """
INSERT INTO llm_usage_log (request_id, user_id, model, credits_used, success, created_at)
SELECT unnest($1::text[]), $2, unnest($3::text[]), unnest($4::numeric[]), unnest($5::boolean[]),
       unnest($6::timestamptz[])
"""


def daily(service, key: str, **params) -> httpx.Response:
    return service.get("/v1/usage/daily", key, **params)


@st.composite
def usage_rows(draw, days: int) -> list[tuple[int, int, str, Decimal, bool]]:
    """(day offset from today, microsecond of that UTC day, model, credits, success): days in and
    around the window, its first day and the day before it often, midnights and last instants."""
    offset = st.one_of(st.integers(-92, 1), st.sampled_from([-days, -(days - 1), 0, 1]))
    moment = st.one_of(st.sampled_from([0, DAY_MICROSECONDS - 1]), st.integers(0, DAY_MICROSECONDS - 1))
    row = st.tuples(
        offset,
        moment,
        st.sampled_from(MODELS),
        st.decimals(min_value=0, max_value=Decimal("100000"), places=6),
        st.booleans(),
    )
    return draw(st.lists(row, max_size=25))


def expected(rows, today: date, days: int) -> list[dict]:
    first = today - timedelta(days=days - 1)
    sums: dict[tuple[date, str], list[Decimal]] = defaultdict(list)
    for offset, moment, model, credits, _ in rows:
        at = datetime.combine(today, time(), UTC) + timedelta(days=offset, microseconds=moment)
        if first <= at.date() <= today:
            sums[(at.date(), model)].append(credits)
    return [
        {"day": day.isoformat(), "model": model, "requests": len(parts), "credits": sum(parts, Decimal(0))}
        for (day, model), parts in sorted(sums.items())
    ]


def new_user(service) -> str:
    """A fresh user's key, made through the admin API."""
    user_id = service.admin("POST", "/admin/users", json={}).json()["user_id"]
    return service.admin("POST", f"/admin/users/{user_id}/keys", json={}).json()["key"]


def test_each_day_and_model_is_the_exact_sum_of_the_callers_own_rows(database_url, upstreams, start_service):
    service = start_service(upstreams)
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(database_url))

    def insert(user_id: uuid.UUID, today: date, rows) -> None:
        at = [datetime.combine(today, time(), UTC) + timedelta(days=o, microseconds=m) for o, m, *_ in rows]
        loop.run_until_complete(
            conn.execute(
                INSERT_USAGE,
                [f"req-{uuid.uuid4()}" for _ in rows],
                user_id,
                [r[2] for r in rows],
                [r[3] for r in rows],
                [r[4] for r in rows],
                at,
            )
        )

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data(), days=st.one_of(st.integers(1, 90), st.sampled_from([1, 30, 90])))
    def check(data: st.DataObject, days: int) -> None:
        mine, theirs = data.draw(usage_rows(days)), data.draw(usage_rows(days))
        key, other_key = new_user(service), new_user(service)
        me = uuid.UUID(service.get("/v1/credits/balance", key).json()["user_id"])
        other = uuid.UUID(service.get("/v1/credits/balance", other_key).json()["user_id"])
        today = loop.run_until_complete(conn.fetchval(TODAY_SQL))
        insert(me, today, mine)
        insert(other, today, theirs)

        answer = daily(service, key, days=days)
        theirs_answer = daily(service, other_key, days=days)
        # a UTC midnight passed between reading today and the answer: the window moved, draw again
        assume(loop.run_until_complete(conn.fetchval(TODAY_SQL)) == today)

        assert answer.status_code == 200, answer.text
        body = answer.json()
        first = today - timedelta(days=days - 1)
        assert (body["object"], body["days"], body["from"], body["to"]) == (
            "list",
            days,
            first.isoformat(),
            today.isoformat(),
        )
        got = [{**row, "credits": Decimal(row["credits"])} for row in body["data"]]
        assert got == expected(mine, today, days)
        assert [{**row, "credits": Decimal(row["credits"])} for row in theirs_answer.json()["data"]] == expected(
            theirs, today, days
        )

    try:
        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


async def test_a_metered_request_appears_on_today_with_the_credits_it_was_charged(
    pool, upstreams, start_service, make_account
):
    service = start_service(upstreams)
    account = await make_account(credits_="100")
    client = service.client(account.key)
    client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    for fake in upstreams.values():
        fake.status = 503
    with pytest.raises(openai.APIStatusError):  # a failed request is a usage row too
        client.chat.completions.create(model="gpt-4", messages=MESSAGES)

    body = daily(service, account.key).json()
    rows = service.get("/v1/usage", account.key).json()["data"]
    today = await pool.fetchval(TODAY_SQL)

    assert body["days"] == 30 and body["to"] == today.isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()
    assert body["data"] == [
        {
            "day": today.isoformat(),
            "model": "gpt-4",
            "requests": len(rows),
            "credits": str(sum((Decimal(r["credits_used"]) for r in rows), Decimal(0))),
        }
    ]


@pytest.mark.parametrize("days", ["0", "91", "-1", "thirty", "1.5", ""])
async def test_days_out_of_range_is_a_400(upstreams, start_service, make_account, days):
    service = start_service(upstreams)
    account = await make_account()

    answer = daily(service, account.key, days=days)

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "days" and answer.json()["error"]["code"] == "invalid_parameter"

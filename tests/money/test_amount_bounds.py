"""Credit amounts are bounded by what numeric(20,6) holds, in Python (to_credits) and in SQL
(ledger_require_amount, LG001), and both draw the line in the same place."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidAmount
from ledger.money.credits import add_user_credits
from ledger.money.values import MAX_CREDITS, to_credits

AMOUNTS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=Decimal("-1e16"), max_value=Decimal("1e16"), places=7),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([MAX_CREDITS, MAX_CREDITS + Decimal("0.000001"), Decimal("1e14"), Decimal("0.000001")]),
)


@settings(max_examples=500, deadline=None)
@given(AMOUNTS)
def test_to_credits_accepts_exactly_what_a_credit_column_holds(value):
    try:
        amount = to_credits(value)
    except InvalidAmount:
        decimal = Decimal(value)
        assert not decimal.is_finite() or decimal <= 0 or decimal > MAX_CREDITS or decimal != round(decimal, 6), value
    else:
        assert 0 < amount <= MAX_CREDITS and amount == round(amount, 6)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=40) | st.integers().map(str) | st.sampled_from(["1e999999999", "-1e-999999999", "9" * 5000]))
def test_to_credits_refuses_any_text_with_its_own_error(value):
    try:
        to_credits(value)
    except InvalidAmount as exc:
        assert len(exc.message) < 200, "a refusal does not echo a huge input"


ACCEPTS = """
CREATE FUNCTION pg_temp.accepts(a numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_require_amount(a);
    RETURN true;
EXCEPTION WHEN SQLSTATE 'LG001' THEN
    RETURN false;
END $$
"""


async def test_sql_and_python_draw_the_same_line(pool):
    drawn: list[Decimal] = []

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=7, allow_nan=False))
    def collect(value):
        drawn.append(value)

    collect()
    drawn += [MAX_CREDITS, MAX_CREDITS + Decimal("0.000001"), Decimal("1e14"), Decimal("1e15"), Decimal("0.000001")]
    async with pool.acquire() as conn:
        await conn.execute(ACCEPTS)
        sql = await conn.fetch("SELECT x, pg_temp.accepts(x) AS ok FROM unnest($1::numeric[]) x", drawn)
    for row in sql:
        try:
            to_credits(row["x"])
            python = True
        except InvalidAmount:
            python = False
        assert row["ok"] == python, row["x"]


async def test_an_amount_past_the_column_is_lg001_not_an_overflow(pool, make_user):
    user = await make_user()
    with pytest.raises(asyncpg.PostgresError) as refused:
        await pool.fetchrow("SELECT * FROM add_user_credits($1, 1e15, 'bonus', NULL, 'x')", user)
    assert refused.value.sqlstate == "LG001"
    with pytest.raises(InvalidAmount):
        await add_user_credits(pool, user, "1e15", "bonus")
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions") == 0

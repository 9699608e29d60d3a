"""refund_purchased_credits and hold_disputed_credits apply a reference once, even when the first
application moved no credits: a Stripe refund or dispute is never taken or held twice."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

REFUND = "SELECT * FROM refund_purchased_credits($1, $2, $3, 'refund')"
DISPUTE = "SELECT * FROM hold_disputed_credits($1, $2, $3)"


async def test_a_refund_that_took_nothing_takes_nothing_when_replayed_later(pool, make_user):
    user = await make_user()
    first = await pool.fetchrow(REFUND, user, Decimal(10), "ch_1:refunded:1000")
    assert (first["refunded"], first["shortfall"], first["transaction_id"]) == (0, 10, None)

    await pool.execute("SELECT add_user_credits($1, 50, 'bonus', NULL, 'later credits')", user)
    again = await pool.fetchrow(REFUND, user, Decimal(10), "ch_1:refunded:1000")

    assert tuple(again) == tuple(first)
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user) == 50
    assert await pool.fetchval("SELECT count(*) FROM ledger_reconciliation") == 0


async def test_a_dispute_that_held_nothing_holds_nothing_when_replayed_later(pool, make_user):
    user = await make_user()
    first = await pool.fetchrow(DISPUTE, user, Decimal(10), "dp_1")
    assert (first["hold_id"], first["held"]) == (None, 0)

    await pool.execute("SELECT add_user_credits($1, 50, 'bonus', NULL, 'later credits')", user)
    again = await pool.fetchrow(DISPUTE, user, Decimal(10), "dp_1")

    assert tuple(again) == (None, 0)
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", user) == 0


@pytest.mark.parametrize("empty_first", [True, False])
async def test_a_refund_reference_of_another_account_is_a_conflict(pool, make_user, empty_first):
    owner = await make_user(credits=None if empty_first else "20")
    other = await make_user(credits="20")
    await pool.fetchrow(REFUND, owner, Decimal(5), "ch_2:refunded:500")

    with pytest.raises(asyncpg.PostgresError) as raised:
        await pool.fetchrow(REFUND, other, Decimal(5), "ch_2:refunded:500")

    assert raised.value.sqlstate == "LG004"
    assert await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", other) == 20


@pytest.mark.parametrize("empty_first", [True, False])
async def test_a_dispute_of_another_account_is_a_conflict(pool, make_user, empty_first):
    owner = await make_user(credits=None if empty_first else "20")
    other = await make_user(credits="20")
    await pool.fetchrow(DISPUTE, owner, Decimal(5), "dp_2")

    with pytest.raises(asyncpg.PostgresError) as raised:
        await pool.fetchrow(DISPUTE, other, Decimal(5), "dp_2")

    assert raised.value.sqlstate == "LG004"
    assert await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", other) == 0

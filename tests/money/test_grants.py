"""Credit grants that expire, by priority: spent after the allowance and before purchased
credits, lowest priority number first then earliest expiry; a refund takes back purchased credits
only; what is left at expiry leaves by an `expiry` transaction row, told beforehand once
(credits.expiring); the ledger reconciles throughout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import IdempotencyConflict, InvalidArgument
from ledger.money import credits, grants

LATER = datetime.now(UTC) + timedelta(days=30)


async def purchase(pool, user_id, amount: str) -> None:
    await credits.add_user_credits(pool, user_id, amount, "purchase", f"pi_{uuid.uuid4().hex}")


async def usage(pool, user_id, amount: str) -> bool:
    result = await credits.debit_user_credits(pool, user_id, amount, "usage", f"req_{uuid.uuid4().hex}")
    return result.success


async def remaining(pool, user_id) -> list[tuple[str, Decimal]]:
    return [(lot["kind"] if lot["lot"] == "grant" else "purchased", lot["remaining"])
            for lot in await grants.lots_of(pool, user_id)]  # fmt: skip


async def reconciles(pool) -> None:
    assert [dict(r) for r in await pool.fetch("SELECT * FROM ledger_reconciliation")] == []


async def test_allowance_then_grants_by_priority_and_expiry_then_purchased(pool, make_user):
    user = await make_user(monthly_allowance="2")
    await purchase(pool, user, "10")
    await grants.grant(pool, user, "3", "bonus", "late", None, LATER + timedelta(days=5), 10)
    await grants.grant(pool, user, "4", "admin_adjustment", "soon", None, LATER, 10)
    await grants.grant(pool, user, "5", "bonus", "never", None, None, 10)
    await grants.grant(pool, user, "1", "bonus", "first", None, None, 0)
    order = [(lot["grant_id"] is None, lot["priority"], lot["remaining"]) for lot in await grants.lots_of(pool, user)]
    assert order == [(False, 0, 1), (False, 10, 4), (False, 10, 3), (False, 10, 5), (True, None, 10)]
    assert await usage(pool, user, "2")  # the allowance
    assert [r for _, r in await remaining(pool, user)] == [1, 4, 3, 5, 10]
    assert await usage(pool, user, "6")  # priority 0, then the earliest expiry, then one of the later
    assert [r for _, r in await remaining(pool, user)] == [2, 5, 10]
    assert await usage(pool, user, "9")  # the rest of the grants, then 2 purchased
    assert await remaining(pool, user) == [("purchased", Decimal(8))]
    await reconciles(pool)


async def test_a_refund_takes_back_purchased_credits_only(pool, make_user):
    user = await make_user()
    await purchase(pool, user, "10")
    await grants.grant(pool, user, "5", "bonus", "promo", None, LATER, None)
    refund = await credits.refund_purchased_credits(pool, user, "12", "re_1")
    assert (refund.refunded, refund.shortfall) == (Decimal(10), Decimal(2))
    assert await remaining(pool, user) == [("bonus", Decimal(5))]
    # a refund debit cannot take granted credits either
    assert not (await credits.debit_user_credits(pool, user, "1", "refund", "re_2")).success
    await reconciles(pool)


async def test_what_is_left_expires_by_its_own_transaction_told_once_before(pool, make_user):
    user = await make_user()
    await purchase(pool, user, "10")
    made = await grants.grant(pool, user, "5", "bonus", "promo", "spring promotion", LATER, None)
    assert await usage(pool, user, "2")  # from the grant
    # a week before: credits.expiring, once (the event is stored when someone receives it: an email)
    await pool.execute("UPDATE user_credits SET email = 'owner@example.com' WHERE user_id = $1", user)
    await pool.execute("UPDATE credit_grants SET expires_at = now() + interval '3 days' WHERE id = $1",
                       made["grant_id"])  # fmt: skip
    assert await grants.tell_expiring(pool) == 1
    assert await grants.tell_expiring(pool) == 0
    told = await pool.fetchrow("SELECT * FROM notification_events WHERE event_type = 'credits.expiring'")
    assert told["data"].count('"remaining": "3.000000"') == 1
    # its date passes: the 3 left leave by an expiry row; purchased credits stay
    await pool.execute("UPDATE credit_grants SET expires_at = now() - interval '1 second' WHERE id = $1",
                       made["grant_id"])  # fmt: skip
    assert await grants.expire_grants(pool) == 1
    assert await grants.expire_grants(pool) == 0  # once
    row = await pool.fetchrow("SELECT * FROM credit_transactions WHERE transaction_type = 'expiry'")
    assert row["amount"] == Decimal(-3) and row["balance_after"] == Decimal(10)
    assert await remaining(pool, user) == [("purchased", Decimal(10))]
    lot = await pool.fetchrow("SELECT * FROM credit_grants WHERE id = $1", made["grant_id"])
    assert lot["remaining"] == 0 and lot["expired_at"] is not None and lot["expiry_transaction_id"] == row["id"]
    await reconciles(pool)


async def test_a_replayed_grant_changes_nothing_and_bad_terms_are_refused(pool, make_user):
    user = await make_user()
    first = await grants.grant(pool, user, "5", "bonus", "same", None, LATER, 20)
    again = await grants.grant(pool, user, "5", "bonus", "same", None, LATER, 20)
    assert again["transaction_id"] == first["transaction_id"] and again["grant_id"] == first["grant_id"]
    with pytest.raises(IdempotencyConflict):  # one reference is one grant: not silently other terms
        await grants.grant(pool, user, "5", "bonus", "same", None, LATER + timedelta(days=9), 90)
    lot = await pool.fetchrow("SELECT priority, expires_at FROM credit_grants WHERE id = $1", first["grant_id"])
    assert (lot["priority"], lot["expires_at"]) == (20, LATER)
    for expires, priority in [(datetime.now(UTC) - timedelta(seconds=1), None), (None, 101), (None, -1)]:
        with pytest.raises(InvalidArgument):
            await grants.grant(pool, user, "1", "bonus", f"bad_{uuid.uuid4().hex}", None, expires, priority)
    assert await pool.fetchval("SELECT count(*) FROM credit_grants") == 1


async def test_the_reconciliation_finds_a_tampered_lot(pool, make_user):
    user = await make_user()
    await grants.grant(pool, user, "5", "bonus", "promo", None, LATER, None)
    await pool.execute("UPDATE credit_grants SET remaining = 4")
    problems = await pool.fetch("SELECT problem FROM ledger_reconciliation")
    assert [r["problem"] for r in problems] == ["grants_mismatch"]


LOTS = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(50), places=6),
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lots=LOTS, bought=st.decimals(min_value=0, max_value=Decimal(20), places=6),
       spend=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(300), places=6))  # fmt: skip
async def test_spending_draws_the_lots_greedily_in_order_and_purchased_last(pool, make_user, lots, bought, spend):
    user = await make_user()
    if bought:
        await purchase(pool, user, str(bought))
    for index, (amount, priority, days) in enumerate(lots):
        expires = None if days is None else LATER + timedelta(days=days)
        await grants.grant(pool, user, str(amount), "bonus", f"g{index}_{uuid.uuid4().hex}", None, expires, priority)
    before = await grants.lots_of(pool, user)
    total = sum((lot["remaining"] for lot in before), Decimal(0))
    served = await usage(pool, user, str(spend))
    assert served == (spend <= total)
    expected, left = [], spend if served else Decimal(0)
    for lot in before:  # the model: take greedily in the listed order
        take = min(left, lot["remaining"])
        expected.append(lot["remaining"] - take)
        left -= take
    after = {(lot["grant_id"], lot["lot"]): lot["remaining"] for lot in await grants.lots_of(pool, user)}
    assert [after.get((lot["grant_id"], lot["lot"]), Decimal(0)) for lot in before] == expected
    await reconciles(pool)

"""Holds for requests in flight: reserve, settle, release, expire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from ledger import errors
from ledger.money.credits import debit_user_credits
from ledger.money.holds import expire_credit_holds, release_credit_hold, reserve_credits, settle_credit_hold


async def account(pool, user_id):
    return await pool.fetchrow("SELECT balance, credits_held FROM user_credits WHERE user_id = $1", user_id)


async def hold_status(pool, hold_id):
    return await pool.fetchval("SELECT status FROM credit_holds WHERE hold_id = $1", hold_id)


async def assert_reconciled(pool):
    assert [dict(p) for p in await pool.fetch("SELECT * FROM ledger_reconciliation")] == []


async def test_a_reservation_holds_credits_without_touching_the_balance(pool, make_user):
    user = await make_user(credits="10")

    reservation = await reserve_credits(pool, user, 4, "req_1")

    assert reservation.success and reservation.hold_id is not None
    assert reservation.available == 6
    row = await account(pool, user)
    assert (row["balance"], row["credits_held"]) == (10, 4)
    assert await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE user_id = $1", user) == 1
    await assert_reconciled(pool)


async def test_held_credits_cannot_be_spent_twice(pool, make_user):
    user = await make_user(credits="10")
    await reserve_credits(pool, user, 8, "req_1")

    refused = await reserve_credits(pool, user, 3, "req_2")
    debit = await debit_user_credits(pool, user, 3, "usage", "req_3")

    assert not refused.success and refused.hold_id is None and refused.available == 2
    assert not debit.success


async def test_concurrent_reservations_never_hold_more_than_the_account_has(pool, make_user):
    user = await make_user(credits="20")

    results = await asyncio.gather(*(reserve_credits(pool, user, 1, f"req_{i}") for i in range(50)))

    assert sum(r.success for r in results) == 20
    assert (await account(pool, user))["credits_held"] == 20
    await assert_reconciled(pool)


async def test_settle_charges_the_actual_cost_and_releases_the_rest(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 4, "req_1")

    settled = await settle_credit_hold(pool, hold.hold_id, "1.25", "gpt-4 completion")

    assert settled.success and settled.charged == Decimal("1.25") and settled.shortfall == 0
    assert settled.new_balance == Decimal("8.75")
    row = await account(pool, user)
    assert (row["balance"], row["credits_held"]) == (Decimal("8.75"), 0)
    txn = await pool.fetchrow("SELECT * FROM credit_transactions WHERE id = $1", settled.transaction_id)
    assert (txn["transaction_type"], txn["reference_id"], txn["amount"]) == (
        "usage",
        "req_1",
        Decimal("-1.25"),
    )
    assert await hold_status(pool, hold.hold_id) == "settled"
    await assert_reconciled(pool)


async def test_settle_draws_the_allowance_first(pool, make_user):
    user = await make_user(monthly_allowance=5, credits="10")
    hold = await reserve_credits(pool, user, 14, "req_1")

    settled = await settle_credit_hold(pool, hold.hold_id, 7)

    assert settled.new_balance == 8
    txn = await pool.fetchrow(
        "SELECT amount, allowance_used FROM credit_transactions WHERE id = $1", settled.transaction_id
    )
    assert (txn["amount"], txn["allowance_used"]) == (-2, 5)


async def test_a_settle_above_the_hold_never_makes_a_balance_negative(pool, make_user):
    user = await make_user(credits="3")
    hold = await reserve_credits(pool, user, 2, "req_1")

    settled = await settle_credit_hold(pool, hold.hold_id, 5)

    assert settled.charged == 3 and settled.shortfall == 2 and settled.new_balance == 0
    row = await pool.fetchrow("SELECT settle_amount, charged FROM credit_holds WHERE hold_id = $1", hold.hold_id)
    assert (row["settle_amount"], row["charged"]) == (5, 3), "the shortfall is on record"
    await assert_reconciled(pool)


async def test_a_settle_above_the_hold_is_charged_in_full_when_affordable(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 2, "req_1")

    settled = await settle_credit_hold(pool, hold.hold_id, 5)

    assert settled.charged == 5 and settled.shortfall == 0 and settled.new_balance == 5


async def test_a_settle_of_zero_charges_nothing_and_frees_the_hold(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 2, "req_1")

    settled = await settle_credit_hold(pool, hold.hold_id, 0)

    assert settled.charged == 0 and settled.transaction_id is None and settled.new_balance == 10
    assert (await account(pool, user))["credits_held"] == 0


async def test_a_settle_is_applied_once(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 4, "req_1")

    results = await asyncio.gather(*(settle_credit_hold(pool, hold.hold_id, 3) for _ in range(10)))

    assert len({r.transaction_id for r in results}) == 1
    assert all(r.new_balance == 7 for r in results)
    with pytest.raises(errors.IdempotencyConflict):
        await settle_credit_hold(pool, hold.hold_id, 2)
    assert (await account(pool, user))["balance"] == 7


async def test_release_gives_the_hold_back_without_a_charge(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 4, "req_1")

    assert await release_credit_hold(pool, hold.hold_id) == 4
    assert await release_credit_hold(pool, hold.hold_id) == 0

    row = await account(pool, user)
    assert (row["balance"], row["credits_held"]) == (10, 0)
    assert await hold_status(pool, hold.hold_id) == "released"
    with pytest.raises(errors.HoldNotOpen):
        await settle_credit_hold(pool, hold.hold_id, 1)


async def test_a_settled_hold_cannot_be_released(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 4, "req_1")
    await settle_credit_hold(pool, hold.hold_id, 1)

    with pytest.raises(errors.HoldNotOpen):
        await release_credit_hold(pool, hold.hold_id)


async def test_a_hold_never_settled_expires_and_gives_its_credits_back(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 10, "req_1", ttl=timedelta(milliseconds=50))
    assert not (await reserve_credits(pool, user, 1, "req_2")).success
    await asyncio.sleep(0.1)

    assert await expire_credit_holds(pool) == 1

    assert await hold_status(pool, hold.hold_id) == "expired"
    row = await account(pool, user)
    assert (row["balance"], row["credits_held"]) == (10, 0)
    assert await expire_credit_holds(pool) == 0
    await assert_reconciled(pool)


async def test_a_new_reservation_reclaims_the_users_expired_holds_by_itself(pool, make_user):
    user = await make_user(credits="10")
    await reserve_credits(pool, user, 10, "req_1", ttl=timedelta(milliseconds=50))
    await asyncio.sleep(0.1)

    reservation = await reserve_credits(pool, user, 10, "req_2")

    assert reservation.success
    await assert_reconciled(pool)


async def test_an_expired_hold_still_settles_what_was_served(pool, make_user):
    user = await make_user(credits="10")
    hold = await reserve_credits(pool, user, 4, "req_1", ttl=timedelta(milliseconds=50))
    await asyncio.sleep(0.1)
    await expire_credit_holds(pool)

    settled = await settle_credit_hold(pool, hold.hold_id, 3)

    assert settled.charged == 3 and settled.new_balance == 7
    assert (await account(pool, user))["credits_held"] == 0
    await assert_reconciled(pool)


async def test_an_unlimited_user_always_reserves(pool, make_user):
    user = await make_user(tier="enterprise", monthly_allowance=None)

    reservation = await reserve_credits(pool, user, 1_000_000, "req_1")
    settled = await settle_credit_hold(pool, reservation.hold_id, 999)

    assert reservation.success and reservation.available is None
    assert settled.charged == 999 and settled.new_balance == 0


async def test_a_replayed_reservation_returns_the_same_hold(pool, make_user):
    user = await make_user(credits="10")
    first = await reserve_credits(pool, user, 4, "req_1")

    again = await reserve_credits(pool, user, 4, "req_1")

    assert again.hold_id == first.hold_id
    assert (await account(pool, user))["credits_held"] == 4
    with pytest.raises(errors.IdempotencyConflict):
        await reserve_credits(pool, user, 5, "req_1")


async def test_bad_hold_input_raises_and_writes_nothing(pool, make_user):
    user = await make_user(credits="10")

    with pytest.raises(errors.InvalidAmount):
        await reserve_credits(pool, user, 0, "req_1")
    with pytest.raises(errors.MissingReference):
        await reserve_credits(pool, user, 1, "")
    with pytest.raises(errors.InvalidArgument):
        await reserve_credits(pool, user, 1, "req_1", ttl=timedelta(0))
    with pytest.raises(errors.UnknownUser):
        await reserve_credits(pool, uuid.uuid4(), 1, "req_1")
    with pytest.raises(errors.UnknownHold):
        await settle_credit_hold(pool, uuid.uuid4(), 1)
    with pytest.raises(errors.UnknownHold):
        await release_credit_hold(pool, uuid.uuid4())
    with pytest.raises(errors.InvalidId):
        await settle_credit_hold(pool, "hold-1", 1)
    with pytest.raises(errors.InvalidAmount):
        await settle_credit_hold(pool, uuid.uuid4(), -1)

    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0
    assert (await account(pool, user))["credits_held"] == 0

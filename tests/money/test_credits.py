"""add_user_credits, debit_user_credits and get_quota_usage_percentage against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger.money.credits import add_user_credits, adjust_credits, debit_user_credits, get_quota_usage_percentage


async def balance_of(pool: asyncpg.Pool, user_id: uuid.UUID) -> Decimal:
    return await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", user_id)


async def transaction_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM credit_transactions")


async def assert_reconciled(pool: asyncpg.Pool) -> None:
    problems = await pool.fetch("SELECT * FROM ledger_reconciliation")
    assert [dict(p) for p in problems] == []


async def test_a_purchase_adds_credits_and_writes_one_transaction(pool, make_user):
    user = await make_user()

    result = await add_user_credits(pool, user, Decimal("100.00"), "purchase", "pi_1", "Starter Pack")

    assert result.success and result.new_balance == Decimal("100")
    row = await pool.fetchrow("SELECT * FROM credit_transactions WHERE id = $1", result.transaction_id)
    assert row["transaction_type"] == "purchase"
    assert row["amount"] == Decimal("100") and row["balance_after"] == Decimal("100")
    assert row["payment_intent_id"] == "pi_1" and row["reference_id"] == "pi_1"
    await assert_reconciled(pool)


async def test_a_debit_removes_credits(pool, make_user):
    user = await make_user(credits="10")

    result = await debit_user_credits(pool, user, "2.5", "usage", "req_1", "GPT-4 completion")

    assert result.success and result.new_balance == Decimal("7.5")
    assert await balance_of(pool, user) == Decimal("7.5")
    await assert_reconciled(pool)


async def test_a_debit_the_account_cannot_afford_writes_nothing(pool, make_user):
    user = await make_user(credits="1")
    before = await transaction_count(pool)

    result = await debit_user_credits(pool, user, "1.000001", "usage", "req_1")

    assert not result.success and result.transaction_id is None
    assert result.new_balance == Decimal("1")
    assert await transaction_count(pool) == before


async def test_200_concurrent_debits_against_50_credits_succeed_exactly_50_times(pool, make_user):
    user = await make_user(credits="50")

    results = await asyncio.gather(*(debit_user_credits(pool, user, 1, "usage", f"req_{i}") for i in range(200)))

    assert sum(r.success for r in results) == 50
    assert await balance_of(pool, user) == 0
    total = await pool.fetchval("SELECT sum(amount) FROM credit_transactions WHERE user_id = $1", user)
    assert total == 0
    await assert_reconciled(pool)


async def test_a_replayed_payment_intent_is_applied_once_and_returns_the_first_result(pool, make_user):
    user = await make_user()
    first = await add_user_credits(pool, user, 100, "purchase", "pi_1")

    again = await add_user_credits(pool, user, 100, "purchase", "pi_1")

    assert again == first
    assert await balance_of(pool, user) == 100
    assert await transaction_count(pool) == 1


async def test_concurrent_replays_of_one_payment_intent_apply_once(pool, make_user):
    user = await make_user()

    results = await asyncio.gather(*(add_user_credits(pool, user, 100, "purchase", "pi_1") for _ in range(20)))

    assert len({r.transaction_id for r in results}) == 1
    assert await balance_of(pool, user) == 100
    await assert_reconciled(pool)


async def test_a_replayed_request_id_is_debited_once(pool, make_user):
    user = await make_user(credits="10")

    results = await asyncio.gather(*(debit_user_credits(pool, user, 3, "usage", "req_1") for _ in range(10)))

    assert len({r.transaction_id for r in results}) == 1
    assert all(r.success and r.new_balance == 7 for r in results)
    assert await balance_of(pool, user) == 7


async def test_a_reference_replayed_with_another_amount_is_a_conflict_and_writes_nothing(pool, make_user):
    user = await make_user()
    await add_user_credits(pool, user, 100, "purchase", "pi_1")
    await debit_user_credits(pool, user, 5, "usage", "req_1")
    before = await transaction_count(pool)

    with pytest.raises(errors.IdempotencyConflict):
        await add_user_credits(pool, user, 500, "purchase", "pi_1")
    with pytest.raises(errors.IdempotencyConflict):
        await debit_user_credits(pool, user, 6, "usage", "req_1")

    assert await transaction_count(pool) == before
    assert await balance_of(pool, user) == 95


async def test_a_reference_replayed_for_another_account_is_a_conflict(pool, make_user):
    alice, bob = await make_user(), await make_user()
    await add_user_credits(pool, alice, 100, "purchase", "pi_1")

    with pytest.raises(errors.IdempotencyConflict):
        await add_user_credits(pool, bob, 100, "purchase", "pi_1")

    assert await balance_of(pool, bob) == 0


async def test_usage_draws_the_allowance_before_the_purchased_balance(pool, make_user):
    user = await make_user(tier="starter", monthly_allowance=10, credits="20")

    first = await debit_user_credits(pool, user, 6, "usage", "req_1")
    second = await debit_user_credits(pool, user, 6, "usage", "req_2")

    assert first.new_balance == 20, "6 of the 10 allowance credits, balance untouched"
    assert second.new_balance == 18, "the last 4 allowance credits, then 2 from the balance"
    rows = await pool.fetch(
        "SELECT amount, allowance_used FROM credit_transactions WHERE transaction_type = 'usage' ORDER BY id"
    )
    assert [(r["amount"], r["allowance_used"]) for r in rows] == [(0, 6), (-2, 4)]
    used = await pool.fetchval("SELECT credits_used_this_month FROM user_credits WHERE user_id = $1", user)
    assert used == 12
    assert await get_quota_usage_percentage(pool, user) == Decimal("120.00")
    await assert_reconciled(pool)


async def test_allowance_plus_balance_bounds_what_usage_can_spend(pool, make_user):
    user = await make_user(monthly_allowance=10, credits="5")

    refused = await debit_user_credits(pool, user, "15.000001", "usage", "req_1")
    taken = await debit_user_credits(pool, user, 15, "usage", "req_2")

    assert not refused.success
    assert taken.success and taken.new_balance == 0


async def test_a_new_billing_cycle_resets_the_allowance(pool, make_user):
    user = await make_user(monthly_allowance=10, credits="5")
    await debit_user_credits(pool, user, 10, "usage", "req_1")
    assert await get_quota_usage_percentage(pool, user) == 100
    await pool.execute(
        "UPDATE user_credits SET billing_cycle_start = now() - interval '1 month 3 days' WHERE user_id = $1",
        user,
    )

    result = await debit_user_credits(pool, user, 4, "usage", "req_2")

    assert result.new_balance == 5, "the new cycle's allowance paid for it"
    row = await pool.fetchrow("SELECT * FROM user_credits WHERE user_id = $1", user)
    assert row["credits_used_this_month"] == 4
    assert row["billing_cycle_start"] > await pool.fetchval("SELECT now() - interval '4 days'")
    assert await get_quota_usage_percentage(pool, user) == Decimal("40.00")


async def test_an_ended_cycle_reads_as_zero_quota_before_any_write(pool, make_user):
    user = await make_user(monthly_allowance=10, credits="5")
    await debit_user_credits(pool, user, 5, "usage", "req_1")
    await pool.execute(
        "UPDATE user_credits SET billing_cycle_start = now() - interval '32 days' WHERE user_id = $1", user
    )

    assert await get_quota_usage_percentage(pool, user) == 0


async def test_an_unlimited_tier_never_blocks_and_keeps_its_balance(pool, make_user):
    user = await make_user(tier="enterprise", monthly_allowance=None)

    results = [await debit_user_credits(pool, user, 1000, "usage", f"req_{i}") for i in range(5)]

    assert all(r.success for r in results)
    assert await balance_of(pool, user) == 0
    assert await get_quota_usage_percentage(pool, user) == 0
    rows = await pool.fetch("SELECT amount, allowance_used FROM credit_transactions WHERE user_id = $1", user)
    assert [(r["amount"], r["allowance_used"]) for r in rows] == [(0, 1000)] * 5


async def test_refunds_and_adjustments_never_draw_the_allowance(pool, make_user):
    user = await make_user(monthly_allowance=100, credits="10")

    refused = await debit_user_credits(pool, user, 11, "refund", "re_1")
    taken = await debit_user_credits(pool, user, 10, "admin_adjustment", "adj_1", "chargeback")

    assert not refused.success
    assert taken.success and taken.new_balance == 0
    assert await get_quota_usage_percentage(pool, user) == 0


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (0, errors.InvalidAmount),
        (-5, errors.InvalidAmount),
        ("abc", errors.InvalidAmount),
        ("NaN", errors.InvalidAmount),
        ("Infinity", errors.InvalidAmount),
        ("0.0000001", errors.InvalidAmount),
        (1.5, errors.InvalidAmount),
    ],
)
async def test_a_bad_amount_raises_and_writes_nothing(pool, make_user, amount, error):
    user = await make_user(credits="10")
    before = await transaction_count(pool)

    with pytest.raises(error):
        await add_user_credits(pool, user, amount, "bonus", "b_1")
    with pytest.raises(error):
        await debit_user_credits(pool, user, amount, "usage", "req_1")

    assert await transaction_count(pool) == before
    assert await balance_of(pool, user) == 10


@pytest.mark.parametrize("sql_amount", ["0", "-1", "'NaN'", "'Infinity'", "0.0000001", "NULL"])
async def test_the_sql_functions_refuse_bad_amounts_themselves(pool, make_user, sql_amount):
    user = await make_user(credits="10")

    for call in ("add_user_credits($1, {}, 'bonus', 'b_1')", "debit_user_credits($1, {}, 'usage', 'r_1')"):
        with pytest.raises(asyncpg.PostgresError) as raised:
            await pool.fetch("SELECT * FROM " + call.format(f"{sql_amount}::numeric"), user)  # noqa: S608
        assert raised.value.sqlstate == "LG001"
    assert await transaction_count(pool) == 1


async def test_an_unknown_transaction_type_raises(pool, make_user):
    user = await make_user(credits="10")

    with pytest.raises(errors.InvalidTransactionType):
        await add_user_credits(pool, user, 1, "usage", "x")
    with pytest.raises(errors.InvalidTransactionType):
        await debit_user_credits(pool, user, 1, "purchase", "x")
    with pytest.raises(errors.InvalidTransactionType):
        await add_user_credits(pool, user, 1, "gift", "x")
    assert await transaction_count(pool) == 1


async def test_an_unknown_user_raises(pool):
    with pytest.raises(errors.UnknownUser):
        await add_user_credits(pool, uuid.uuid4(), 1, "bonus", "b_1")
    with pytest.raises(errors.UnknownUser):
        await debit_user_credits(pool, uuid.uuid4(), 1, "usage", "r_1")
    with pytest.raises(errors.UnknownUser):
        await get_quota_usage_percentage(pool, uuid.uuid4())
    assert await transaction_count(pool) == 0


async def test_a_malformed_user_id_raises_before_any_sql(pool):
    with pytest.raises(errors.InvalidId):
        await add_user_credits(pool, "not-a-uuid", 1, "bonus", "b_1")
    with pytest.raises(errors.InvalidId):
        await debit_user_credits(pool, "12345", 1, "usage", "r_1")
    assert await transaction_count(pool) == 0


async def test_a_purchase_without_payment_intent_and_usage_without_request_id_are_refused(pool, make_user):
    user = await make_user(credits="10")

    with pytest.raises(errors.MissingReference):
        await add_user_credits(pool, user, 1, "purchase", None)
    with pytest.raises(errors.MissingReference):
        await debit_user_credits(pool, user, 1, "usage", "  ")
    assert await transaction_count(pool) == 1


async def test_a_balance_cannot_be_written_outside_the_functions(pool, make_user):
    user = await make_user(credits="10")

    with pytest.raises(asyncpg.PostgresError) as raised:
        await pool.execute("UPDATE user_credits SET balance = 1000 WHERE user_id = $1", user)
    assert raised.value.sqlstate == "LG007"
    with pytest.raises(asyncpg.PostgresError):
        await pool.execute("INSERT INTO user_credits (balance) VALUES (5)")
    with pytest.raises(asyncpg.PostgresError):
        await pool.execute("UPDATE credit_transactions SET amount = 1000")
    with pytest.raises(asyncpg.PostgresError):
        await pool.execute("DELETE FROM credit_transactions")
    assert await balance_of(pool, user) == 10


async def test_a_balance_never_goes_negative_even_by_hand(pool, make_user):
    user = await make_user(credits="1")

    with pytest.raises(asyncpg.CheckViolationError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('ledger.balance_writer', 'on', true)")
            await conn.execute("UPDATE user_credits SET balance = -1 WHERE user_id = $1", user)


async def test_an_operator_grant_refuses_a_float_as_every_amount_does(pool, make_user):
    user = await make_user()

    with pytest.raises(errors.InvalidAmount):
        await adjust_credits(pool, user, 1.5, "bonus", "b_1")
    with pytest.raises(errors.InvalidAmount):
        await adjust_credits(pool, user, -1.5, "admin_adjustment", "a_1")

    assert await transaction_count(pool) == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [(("bonus", "4"), ("admin_adjustment", "4")), (("admin_adjustment", "-2"), ("bonus", "2"))],
)
async def test_one_reference_is_one_grant_whichever_kind_comes_second(pool, make_user, first, second):
    user, other = await make_user(credits="10"), await make_user(credits="10")
    await adjust_credits(pool, user, first[1], first[0], "grant-1")
    before = await transaction_count(pool)

    for owner in (user, other):
        with pytest.raises(errors.IdempotencyConflict, match=f"already used for a {first[0]}"):
            await adjust_credits(pool, owner, second[1], second[0], "grant-1")

    assert await transaction_count(pool) == before
    # the same grant again is still the first one's replay
    again = await adjust_credits(pool, user, first[1], first[0], "grant-1")
    assert again.success and await transaction_count(pool) == before


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["bonus", "admin_adjustment"]), min_size=2, max_size=12))
async def test_one_reference_sent_at_once_as_both_kinds_grants_once(pool, make_user, kinds):
    users = [await make_user(credits="10"), await make_user(credits="10")]
    reference = f"race-{uuid.uuid4().hex}"

    outcomes = await asyncio.gather(
        *(adjust_credits(pool, users[i % 2], "1", kind, reference) for i, kind in enumerate(kinds)),
        return_exceptions=True,
    )

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(o, errors.IdempotencyConflict) for o in refused), refused
    rows = await pool.fetchval("SELECT count(*) FROM credit_transactions WHERE reference_id = $1", reference)
    assert rows == 1
    total = await pool.fetchval("SELECT sum(balance) FROM user_credits WHERE user_id = ANY($1::uuid[])", users)
    assert total == 21

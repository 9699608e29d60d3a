"""A Hypothesis state machine over every money function, across a moving server clock.

Random sequences of add_user_credits (each type), grant_credits (with priorities and expiries),
expire_credit_grants, debit_user_credits (each type), reserve_credits,
settle_credit_hold, release_credit_hold, expire_credit_holds, refund_purchased_credits,
hold_disputed_credits, set_user_tier (with and without a cycle start), roll_billing_cycles and
replays of earlier calls run on a few users of a PostgreSQL whose clock (libfaketime,
tests/clock.py) the machine moves by minutes to months, across month ends. After every step:

- no balance, held amount or cycle use is negative, and the ledger reconciles (balance = sum of
  transactions, balance_after chain, credits_held = open holds, the open grant lots sum to the
  granted part and it never passes the balance: ledger_reconciliation is empty);
- spending draws grant lots in their order (priority, earliest expiry), a refund draws none, and
  after expiry no lot past its expiry holds credits;
- per billing cycle, the allowance drawn by usage is at most the cycle's allowance (the largest
  the user had in it), and credits_used_this_month is exactly that cycle's usage: it resets only
  when a new cycle starts;
- a cycle start never moves back, is always on its anchor's grid, and the cycle read for now
  contains now and agrees with what the next writer leaves;
- a replayed reference changes nothing and answers as the first call did.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.clock import ClockServer, ServerClock, add_months, create_clock_database, drop_clock_database

TIERS = ["trial", "starter", "professional", "enterprise"]
# month ends, a leap day, a year end and an ordinary day: where cycles used to break
STARTS = [
    datetime(2026, 10, 31, 10, tzinfo=UTC),
    datetime(2027, 1, 31, 23, 30, tzinfo=UTC),
    datetime(2027, 1, 30, 6, tzinfo=UTC),
    datetime(2027, 3, 31, 12, tzinfo=UTC),
    datetime(2027, 5, 31, 18, tzinfo=UTC),
    datetime(2028, 2, 29, 12, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2027, 6, 15, 8, tzinfo=UTC),
]
AMOUNTS = st.one_of(
    st.sampled_from([Decimal(n) for n in ("1", "10", "30", "50", "99.999999", "100", "150", "1000")]),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("400"), places=6),
)
# mostly steps within a cycle (several calls land in the same cycle), sometimes across one or many
STEPS = st.one_of(
    st.sampled_from([timedelta(seconds=2), timedelta(minutes=20), timedelta(hours=5), timedelta(days=1)]),
    st.sampled_from([timedelta(days=d) for d in (27, 28, 29, 30, 31, 62, 400)]),
    st.integers(1, 70 * 86400).map(lambda seconds: timedelta(seconds=seconds)),
)
CALENDAR_MOVES = st.tuples(
    st.sampled_from([1, 1, 2, 3, 13]),
    st.sampled_from([-timedelta(hours=1), timedelta(0), timedelta(minutes=1), timedelta(hours=1)]),
)
# The machine keeps its own time in whole seconds and sets the server's clock half a second past it
# before every step, so the few milliseconds a step takes never decide which side of a boundary a
# call lands on (cycle starts are pinned to whole seconds; holds live a quarter second more than
# whole seconds): a failing sequence replays exactly.
PAST = timedelta(milliseconds=500)
TTLS = st.sampled_from([timedelta(seconds=30), timedelta(minutes=15), timedelta(days=2), timedelta(days=45)]).map(
    lambda ttl: ttl + timedelta(milliseconds=250)
)


@dataclass
class Cycle:
    cap: Decimal | None = Decimal(0)  # the largest allowance the user had in the cycle; None = unlimited
    drawn: Decimal = Decimal(0)  # sum of allowance_used
    used: Decimal = Decimal(0)  # sum of usage charged (allowance part + balance part)


@dataclass
class User:
    user_id: uuid.UUID
    start: datetime
    last_transaction: int = 0
    cycles: dict[datetime, Cycle] = field(default_factory=dict)


@dataclass
class Replay:
    sql: str
    args: tuple[Any, ...]
    result: tuple[Any, ...]
    user_id: uuid.UUID


class Harness:
    """What the machine runs on: an event loop and a connection to a database on the clock server."""

    loop: asyncio.AbstractEventLoop
    conn: asyncpg.Connection
    clock: ServerClock


HARNESS = Harness()


def run(coroutine: Any) -> Any:
    return HARNESS.loop.run_until_complete(coroutine)


def fetchrow(sql: str, *args: Any) -> asyncpg.Record:
    return run(HARNESS.conn.fetchrow(sql, *args))


def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    return run(HARNESS.conn.fetch(sql, *args))


def fetchval(sql: str, *args: Any) -> Any:
    return run(HARNESS.conn.fetchval(sql, *args))


T = TypeVar("T")


def pick(data: st.DataObject, items: list[T]) -> T | None:
    """One of `items` (None when there is none), drawn so that the draw does not depend on how many
    there are: the state (holds open, replays recorded) comes from a real PostgreSQL whose clock
    moves with real time between two settings, and Hypothesis refuses a strategy whose shape changes
    when it runs an example again. For the same reason no rule has a precondition that reads that
    state: a rule with nothing to act on does nothing."""
    index = data.draw(st.integers(min_value=0, max_value=2**16))
    return items[index % len(items)] if items else None


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.users: list[User] = []
        self.replays: list[Replay] = []
        self.purchases: list[tuple[uuid.UUID, Decimal]] = []
        self.now = STARTS[0]

    def _tick(self) -> None:
        HARNESS.clock.set(self.now + PAST)

    def _user(self, data: st.DataObject) -> User:
        user = pick(data, self.users)
        assert user is not None, "the machine starts by creating its users"
        return user

    def _ref(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex}"

    def _remember(self, sql: str, args: tuple[Any, ...], row: asyncpg.Record, user_id: uuid.UUID) -> None:
        self.replays.append(Replay(sql, args, tuple(row), user_id))

    @initialize(start=st.sampled_from(STARTS), tiers=st.lists(st.sampled_from(TIERS), min_size=2, max_size=3))
    def create_users(self, start: datetime, tiers: list[str]) -> None:
        self.now = start
        self._tick()
        for tier in tiers:
            user_id = fetchval("SELECT user_id FROM create_ledger_user(NULL, $1)", tier)
            fetchval("UPDATE user_credits SET billing_cycle_start = $2 WHERE user_id = $1", user_id, start)
            user = User(user_id, start)
            user.last_transaction = fetchval("SELECT coalesce(max(id), 0) FROM credit_transactions")
            self.users.append(user)
        self._observe()

    # -- the clock ------------------------------------------------------------------------------

    @rule(move=st.one_of(STEPS, CALENDAR_MOVES))
    def advance_clock(self, move: timedelta | tuple[int, timedelta]) -> None:
        if isinstance(move, timedelta):
            self.now += move
        else:  # to just before or after the same time n calendar months on: where month ends clamp
            months, extra = move
            self.now = add_months(self.now, months) + extra
        self._tick()

    @rule(data=st.data(), extra=st.sampled_from([-timedelta(hours=1), timedelta(0), timedelta(minutes=1)]))
    def advance_to_a_cycle_end(self, data: st.DataObject, extra: timedelta) -> None:
        """To just before or after a user's next cycle boundary, as the reference calendar has it."""
        user = self._user(data)
        anchor = fetchval("SELECT billing_cycle_anchor FROM user_credits WHERE user_id = $1", user.user_id)
        months = 0
        while add_months(anchor, months) <= self.now:
            months += 1
        target = add_months(anchor, months) + extra
        self.now = max(target, self.now + timedelta(seconds=1))
        self._tick()

    # -- money ----------------------------------------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(["purchase", "bonus", "admin_adjustment", "refund"]), amount=AMOUNTS)
    def add_credits(self, data: st.DataObject, kind: str, amount: Decimal) -> None:
        user = self._user(data)
        sql = "SELECT * FROM add_user_credits($1, $2, $3, $4, 'state machine')"
        args = (user.user_id, amount, kind, self._ref("pi" if kind == "purchase" else kind))
        row = fetchrow(sql, *args)
        assert row["success"]
        self._remember(sql, args, row, user.user_id)
        if kind == "purchase":
            self.purchases.append((user.user_id, amount))

    @rule(
        data=st.data(),
        kind=st.sampled_from(["bonus", "admin_adjustment"]),
        amount=AMOUNTS,
        priority=st.one_of(st.none(), st.integers(0, 100)),
        expires_in=st.one_of(st.none(), st.sampled_from([timedelta(hours=1), timedelta(days=2), timedelta(days=40)])),
    )
    def grant(
        self, data: st.DataObject, kind: str, amount: Decimal, priority: int | None, expires_in: timedelta | None
    ) -> None:
        user = self._user(data)
        sql = "SELECT * FROM grant_credits($1, $2, $3, $4, $5, $6, 'state machine')"
        expires = None if expires_in is None else self.now + expires_in
        args = (user.user_id, amount, kind, self._ref("grant"), expires, priority)
        row = fetchrow(sql, *args)
        assert row["success"] and row["grant_id"] is not None
        self._remember(sql, args, row, user.user_id)

    @rule()
    def expire_grants(self) -> None:
        assert fetchval("SELECT expire_credit_grants(1000)") >= 0
        left = fetchval("SELECT count(*) FROM credit_grants WHERE expires_at <= now() AND remaining > 0")
        assert left == 0, "an expired lot holds no credits"

    @rule(data=st.data(), kind=st.sampled_from(["usage", "usage", "refund", "admin_adjustment"]), amount=AMOUNTS)
    def debit(self, data: st.DataObject, kind: str, amount: Decimal) -> None:
        user = self._user(data)
        lots = "SELECT id, remaining FROM credit_grants WHERE user_id = $1 ORDER BY priority, expires_at NULLS LAST, id"
        before = [(r["id"], r["remaining"]) for r in fetch(lots, user.user_id)]
        sql = "SELECT * FROM debit_user_credits($1, $2, $3, $4, 'state machine')"
        args = (user.user_id, amount, kind, self._ref("req"))
        row = fetchrow(sql, *args)
        if row["success"]:
            self._remember(sql, args, row, user.user_id)
        after = dict((r["id"], r["remaining"]) for r in fetch(lots, user.user_id))
        drawn = [i for i, (lot, remaining) in enumerate(before) if after[lot] < remaining]
        if kind == "refund":
            assert drawn == [], "a refund takes back purchased credits only"
        elif drawn:  # spending order: every lot before the last one drawn is emptied
            assert all(after[lot] == 0 for lot, _ in before[: drawn[-1]]), "grants are drawn in order"

    @rule(data=st.data(), amount=AMOUNTS, ttl=TTLS)
    def reserve(self, data: st.DataObject, amount: Decimal, ttl: timedelta) -> None:
        user = self._user(data)
        sql = "SELECT success, hold_id FROM reserve_credits($1, $2, $3, $4, 'state machine')"
        args = (user.user_id, amount, self._ref("req"), ttl)
        row = fetchrow(sql, *args)
        if row["success"]:
            self._remember(sql, args, row, user.user_id)

    def _open_holds(self, disputes: bool) -> list[asyncpg.Record]:
        return fetch(
            "SELECT hold_id, amount, user_id FROM credit_holds WHERE status = 'held' AND user_id = ANY($1)"
            " AND (request_id LIKE 'dispute:%') = $2 ORDER BY created_at, hold_id",
            [u.user_id for u in self.users],
            disputes,
        )

    @rule(data=st.data(), how=st.sampled_from(["zero", "part", "all", "more", "much more"]))
    def settle(self, data: st.DataObject, how: str) -> None:
        hold = pick(data, self._open_holds(False))
        if hold is None:
            return
        amount = {
            "zero": Decimal(0),
            "part": (hold["amount"] / 3).quantize(Decimal("0.000001")),
            "all": hold["amount"],
            "more": hold["amount"] + Decimal("0.5"),
            "much more": hold["amount"] * 10,
        }[how]
        sql = "SELECT * FROM settle_credit_hold($1, $2, 'state machine')"
        args = (hold["hold_id"], amount)
        row = fetchrow(sql, *args)
        assert row["success"] and row["charged"] <= amount and row["shortfall"] == amount - row["charged"]
        self._remember(sql, args, row, hold["user_id"])

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold = pick(data, self._open_holds(False) + self._open_holds(True))
        if hold is None:
            return
        released = fetchval("SELECT released FROM release_credit_hold($1)", hold["hold_id"])
        assert released == hold["amount"]

    @rule(max_users=st.just(1000))
    def expire_holds(self, max_users: int) -> None:
        assert fetchval("SELECT expire_credit_holds($1)", max_users) >= 0

    @rule(data=st.data(), share=st.sampled_from([Decimal("0.25"), Decimal(1), Decimal(3)]))
    def refund(self, data: st.DataObject, share: Decimal) -> None:
        purchase = pick(data, self.purchases)
        if purchase is None:
            return
        user_id, bought = purchase
        credits = max((bought * share).quantize(Decimal("0.000001")), Decimal("0.000001"))
        sql = "SELECT * FROM refund_purchased_credits($1, $2, $3, 'state machine')"
        args = (user_id, credits, self._ref("re"))
        row = fetchrow(sql, *args)
        assert row["success"] and row["refunded"] + row["shortfall"] == credits
        self._remember(sql, args, row, user_id)

    @rule(data=st.data(), amount=AMOUNTS)
    def dispute(self, data: st.DataObject, amount: Decimal) -> None:
        user = self._user(data)
        sql = "SELECT * FROM hold_disputed_credits($1, $2, $3)"
        args = (user.user_id, amount, self._ref("dp"))
        row = fetchrow(sql, *args)
        assert row["held"] <= amount
        self._remember(sql, args, row, user.user_id)

    @rule(
        data=st.data(),
        tier=st.sampled_from(TIERS),
        start=st.one_of(
            st.none(),
            st.sampled_from(
                [timedelta(0), timedelta(days=-1), timedelta(days=-10), timedelta(days=-31), timedelta(days=-70)]
            ),
            st.just(timedelta(hours=1)),
        ),
    )
    def set_tier(self, data: st.DataObject, tier: str, start: timedelta | None) -> None:
        user = self._user(data)
        cycle_start = None if start is None else self.now + start
        fetchrow("SELECT * FROM set_user_tier($1, $2, $3)", user.user_id, tier, cycle_start)

    @rule(max_users=st.just(1000))
    def roll_cycles(self, max_users: int) -> None:
        assert fetchval("SELECT roll_billing_cycles($1)", max_users) >= 0

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        first = pick(data, self.replays)
        if first is None:
            return
        state = (
            "SELECT balance, (SELECT count(*) FROM credit_transactions t WHERE t.user_id = u.user_id) AS transactions,"
        )
        state += " (SELECT count(*) FROM credit_holds h WHERE h.user_id = u.user_id) AS holds"
        state += " FROM user_credits u WHERE user_id = $1"
        before = tuple(fetchrow(state, first.user_id))
        again = tuple(fetchrow(first.sql, *first.args))
        after = tuple(fetchrow(state, first.user_id))
        assert before == after, f"a replay changed the ledger: {first.sql} {first.args} first gave {first.result}"
        if "settle_credit_hold" in first.sql:  # new_balance is the balance now when nothing was charged
            assert again[0] == first.result[0] and again[2:] == first.result[2:]
        else:
            assert again == first.result

    # -- what must always hold -------------------------------------------------------------------

    def _observe(self) -> None:
        """Attributes each user's new usage transactions to the cycle they were written in and
        checks the per-cycle rules; called after every step."""
        for user in self.users:
            row = fetchrow("SELECT * FROM user_credits WHERE user_id = $1", user.user_id)
            start = row["billing_cycle_start"]
            assert start >= user.start, "a cycle start never moves back"
            assert fetchval("SELECT ledger_cycle_start($1, $2)", row["billing_cycle_anchor"], start) == start
            user.start = start
            cycle = user.cycles.setdefault(start, Cycle())
            allowance = row["monthly_allowance"]
            if allowance is None or cycle.cap is None:
                cycle.cap = None
            else:
                cycle.cap = max(cycle.cap, allowance)
            new = fetch(
                "SELECT id, amount, allowance_used FROM credit_transactions"
                " WHERE user_id = $1 AND id > $2 AND transaction_type = 'usage' ORDER BY id",
                user.user_id,
                user.last_transaction,
            )
            for transaction in new:
                cycle.drawn += transaction["allowance_used"]
                cycle.used += transaction["allowance_used"] - transaction["amount"]
            user.last_transaction = fetchval(
                "SELECT coalesce(max(id), 0) FROM credit_transactions WHERE user_id = $1", user.user_id
            )
            assert cycle.cap is None or cycle.drawn <= cycle.cap, (
                f"drew {cycle.drawn} of a {cycle.cap} allowance in the cycle from {start}"
            )
            assert row["credits_used_this_month"] == cycle.used, "usage resets only when a new cycle starts"
            assert row["balance"] >= 0 and row["credits_held"] >= 0 and row["credits_used_this_month"] >= 0

            read = fetchrow(
                "SELECT c.*, now() AS now FROM user_credits u, ledger_user_cycle(u, now()) c WHERE u.user_id = $1",
                user.user_id,
            )
            if start <= read["now"]:
                assert read["cycle_start"] <= read["now"] < read["cycle_end"], "the cycle read contains now"
            assert read["cycle_start"] >= start
            assert read["credits_used"] == (0 if read["rolls"] else row["credits_used_this_month"])

    @invariant()
    def ledger_holds(self) -> None:
        if not self.users:
            return
        self._observe()
        # a lot past its expiry is the maintenance's to expire (the expire_grants rule): not a break
        problems = fetch("SELECT * FROM ledger_reconciliation WHERE problem <> 'expired_grant_left'")
        assert [dict(r) for r in problems] == []
        negative = fetchval("SELECT count(*) FROM credit_holds WHERE amount <= 0")
        assert negative == 0
        self._tick()


def test_every_money_function_in_any_order_across_a_moving_clock(clock_server: ClockServer) -> None:
    url = create_clock_database(clock_server)
    HARNESS.loop = asyncio.new_event_loop()
    HARNESS.conn = HARNESS.loop.run_until_complete(asyncpg.connect(url))
    HARNESS.clock = clock_server.clock
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        HARNESS.loop.run_until_complete(HARNESS.conn.close())
        HARNESS.loop.close()
        clock_server.clock.reset()
        drop_clock_database(clock_server, url)

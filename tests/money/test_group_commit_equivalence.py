"""Group commit changes no money: a Hypothesis state machine drives two identical worlds with the
same metered calls (begins, settles, failures: the engine's three), world A one call at a time,
each its own statement and transaction, world B as the batches `ledger serve` sends
(ledger.db.group_commit, migration 0026's ledger_metered_calls), and compares after every batch
what each call answered and the books: wallets, holds, transactions, usage rows, budgets.

A batch runs its settles, then its failures, then its begins, so world A makes them one by one
in that order. Batches may repeat a settle with another amount (the settle raises; the batch is
sent again call by call), settle a hold that a failure in the same batch releases, or hold more
than is left, so the fallback and the refusals are compared too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from ledger.db.group_commit import GroupCommit
from ledger.errors import LedgerError
from ledger.money.usage import BATCH_FORM, BEGIN, FAIL, SETTLE, Charge, UsageRecord, begin_request, finish_request
from tests.controls.sql_requests import TTL, Wallet, make_wallet

WALLETS = 2
FACTS = {"model": "gpt-4", "end_user": None, "client_ip": "127.0.0.1", "tokens": 1000, "providers": ["openai"]}
AMOUNTS = st.one_of(
    st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(5), Decimal(20)]),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(30), places=6),
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("begin"), st.integers(0, WALLETS - 1), AMOUNTS),
        st.tuples(st.just("settle"), st.integers(0, 2**16), st.sampled_from(["zero", "part", "all", "twice"])),
        st.tuples(st.just("fail"), st.integers(0, 2**16), st.just(None)),
    ),
    min_size=1,
    max_size=10,
)


class Harness:
    loop: asyncio.AbstractEventLoop
    pool: asyncpg.Pool


HARNESS = Harness()


def run(coroutine: Any) -> Any:
    return HARNESS.loop.run_until_complete(coroutine)


@dataclass
class World:
    name: str
    wallets: list[Wallet] = field(default_factory=list)
    holds: dict[int, uuid.UUID] = field(default_factory=dict)  # request number -> hold id
    answers: list[dict[str, Any]] = field(default_factory=list)


def begin_args(wallet: Wallet, amount: Decimal, request_id: str) -> tuple[Any, ...]:
    usage = {"request_id": request_id, "model": "gpt-4", "api": "chat"}
    holds = {"balanced": {"credits": str(amount), "multiplier": "1"}}
    return (wallet.key_hash, "balanced", json.dumps(holds), False, request_id, TTL, "test", json.dumps(usage),
            json.dumps(FACTS))  # fmt: skip


def usage_body(world: World, request: int, wallet: Wallet, **more: Any) -> str:
    return json.dumps({"request_id": f"{world.name}-{request}", "model": "gpt-4", "api": "chat",
                       "user_id": str(wallet.workspace_id), "gateway_key_id": str(wallet.key_id),
                       "power_level": "balanced", **more})  # fmt: skip


# what each statement's row says, without the ids and times that differ between the worlds
COMPARED = {
    BEGIN: ("hold_state", "available", "power_level"),
    SETTLE: ("success", "new_balance", "charged", "shortfall", "available"),
    FAIL: ("released",),
}


def answer(statement: str, row: asyncpg.Record | BaseException | None) -> dict[str, Any]:
    if isinstance(row, asyncpg.PostgresError):
        return {"error": row.sqlstate}
    if isinstance(row, BaseException):
        raise row
    if row is None:
        return {"row": None}
    return {name: row[name] for name in COMPARED[statement]}


class GroupCommitMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.worlds = [World("a"), World("b")]
        self.requests = 0
        self.wallet_of: dict[int, int] = {}  # request number -> wallet index
        self.held: dict[int, Decimal] = {}  # request number -> what its begin asked to hold

    @initialize(
        credits=st.lists(st.sampled_from(["3", "25", "100", "1000"]), min_size=WALLETS, max_size=WALLETS),
        budget=st.one_of(st.none(), st.sampled_from([Decimal(4), Decimal(40)])),
    )
    def create_wallets(self, credits: list[str], budget: Decimal | None) -> None:
        for world in self.worlds:
            for amount in credits:
                world.wallets.append(run(make_wallet(HARNESS.pool, amount)))
            if budget is not None:  # a hard monthly budget on the first wallet's workspace
                wallet = world.wallets[0]
                run(
                    HARNESS.pool.execute(
                        "INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period, hard)"
                        " VALUES ($1, 'workspace', $2, $3, 'monthly', true)",
                        wallet.workspace_id,
                        str(wallet.workspace_id),
                        budget,
                    )
                )

    def _calls(self, world: World, operations: list[tuple[str, int, Any]]) -> list[tuple[str, tuple[Any, ...], int]]:
        """The batch's calls in world `world`: (statement, arguments, request number)."""
        calls: list[tuple[str, tuple[Any, ...], int]] = []
        open_requests = sorted(self.held)
        for kind, which, how in operations:
            if kind == "begin":
                request = self.requests + len([c for c in calls if c[0] == BEGIN])
                wallet = world.wallets[which]
                calls.append((BEGIN, begin_args(wallet, how, f"{world.name}-{request}"), request))
            elif open_requests:
                request = open_requests[which % len(open_requests)]
                wallet = world.wallets[self.wallet_of[request]]
                hold_id = world.holds.get(request)
                if kind == "fail":
                    body = usage_body(world, request, wallet, success=False, status_code=502)
                    calls.append((FAIL, (hold_id, body), request))
                    continue
                most = self.held[request]
                credits = {"zero": Decimal(0), "part": (most / 3).quantize(Decimal("0.000001")), "all": most,
                           "twice": most}[how]  # fmt: skip
                body = usage_body(world, request, wallet, prompt_tokens=10)
                calls.append((SETTLE, (hold_id, credits, body, None), request))
                if how == "twice":  # the same settle with another amount: it raises, the batch falls back
                    calls.append((SETTLE, (hold_id, credits / 2, body, None), request))
        return calls

    @rule(operations=OPERATIONS)
    def a_batch(self, operations: list[tuple[str, int, Any]]) -> None:
        answers: list[list[dict[str, Any]]] = []
        for world in self.worlds:
            calls = self._calls(world, operations)
            # the order a batch runs them in: settles, failures, begins, each kind as given
            order = sorted(range(len(calls)), key=lambda i: BATCH_FORM.statements.index(calls[i][0]))
            rows: list[Any] = [None] * len(calls)
            if world.name == "a":  # one by one, in that order
                for i in order:
                    rows[i] = run(self._alone(calls[i][0], calls[i][1]))
            else:
                group = GroupCommit(HARNESS.pool, BATCH_FORM, max_batch=64, in_flight=1)
                rows = run(group.send_together([(statement, args) for statement, args, _ in calls]))
                # one statement, and one more per call when the batch had to be sent again call by call
                sent_again = group.stats.fallbacks * len(calls)
                assert group.stats.statements == 1 + sent_again
                event("sent again call by call" if sent_again else f"a batch of {len(calls)}")
                assert group.stats.deferred == 0, "nothing else holds a lock: no call waits"
            seen = []
            for i in order:
                statement, _, request = calls[i]
                if statement == BEGIN and isinstance(rows[i], asyncpg.Record) and rows[i]["hold_id"] is not None:
                    world.holds[request] = rows[i]["hold_id"]
                seen.append(answer(statement, rows[i]))
            answers.append(seen)
        for kind, which, how in operations:
            if kind == "begin":
                self.wallet_of[self.requests] = which
                self.held[self.requests] = how
                self.requests += 1
        assert answers[0] == answers[1], "a batch answered otherwise than the same calls one by one"

    async def _alone(self, statement: str, args: tuple[Any, ...]) -> Any:
        try:
            return await HARNESS.pool.fetchrow(statement, *args)
        except asyncpg.PostgresError as exc:
            return exc

    @invariant()
    def the_books_are_the_same(self) -> None:
        books = [run(self._books(world)) for world in self.worlds]
        assert books[0] == books[1]

    async def _books(self, world: World) -> list[Any]:
        books: list[Any] = []
        for wallet in world.wallets:
            user = wallet.workspace_id
            books.append(
                dict(
                    await HARNESS.pool.fetchrow(
                        "SELECT balance, credits_held, credits_used_this_month, granted_remaining"
                        " FROM user_credits WHERE user_id = $1",
                        user,
                    )
                )
            )
            books.append(
                [
                    tuple(r)
                    for r in await HARNESS.pool.fetch(
                        "SELECT transaction_type, amount, balance_after, allowance_used FROM credit_transactions"
                        " WHERE user_id = $1 ORDER BY id",
                        user,
                    )
                ]
            )
            books.append(
                [
                    (r["status"], r["amount"], r["settle_amount"], r["request_id"][2:])
                    for r in await HARNESS.pool.fetch(
                        "SELECT status, amount, settle_amount, request_id FROM credit_holds WHERE user_id = $1"
                        " ORDER BY request_id",
                        user,
                    )
                ]
            )
            books.append(
                [
                    (r["request_id"][2:], r["success"], r["credits_used"], r["prompt_tokens"], r["status_code"])
                    for r in await HARNESS.pool.fetch(
                        "SELECT request_id, success, credits_used, prompt_tokens, status_code FROM llm_usage_log"
                        " WHERE user_id = $1 ORDER BY request_id",
                        user,
                    )
                ]
            )
            books.append(
                [
                    tuple(r)
                    for r in await HARNESS.pool.fetch(
                        "SELECT amount, spent, held FROM budgets WHERE workspace_id = $1 ORDER BY id", user
                    )
                ]
            )
        return books


async def open_pool(url: str) -> asyncpg.Pool:
    # made inside the machine's loop (a pool binds to the loop running when it is created); the
    # calls a failed batch sends again alone run at once, on connections of their own
    return await asyncpg.create_pool(url, min_size=1, max_size=8)


def test_batched_and_one_by_one_keep_the_same_books(database_url: str) -> None:
    HARNESS.loop = asyncio.new_event_loop()
    HARNESS.pool = HARNESS.loop.run_until_complete(open_pool(database_url))
    try:
        run_state_machine_as_test(
            GroupCommitMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        HARNESS.loop.run_until_complete(HARNESS.pool.close())
        HARNESS.loop.close()


async def test_concurrent_calls_gather_into_batches_and_each_gets_its_own_answer(pool: asyncpg.Pool) -> None:
    wallet = await make_wallet(pool, "100")
    group = GroupCommit(pool, BATCH_FORM, max_batch=8, in_flight=1)
    keys = [wallet.key_hash] * 29 + ["no such key"]
    begun = await asyncio.gather(
        *(begin_request(group, key, "balanced", {"balanced": (Decimal(1), Decimal(1))}, False, TTL, "test",
                        UsageRecord(f"req-{i}", "gpt-4", api="chat"), FACTS) for i, key in enumerate(keys))
    )  # fmt: skip
    assert begun[-1] is None, "an unknown key is refused, in a batch as alone"
    holds = [b.reservation.hold_id for b in begun[:-1] if b is not None and b.reservation is not None]
    assert len(set(holds)) == 29
    # 30 calls waited while at most one statement ran: fewer statements, none above 8 calls
    assert 4 <= group.stats.statements < 30 and group.stats.calls == 30

    def usage(i: int) -> UsageRecord:
        return UsageRecord(f"req-{i}", "gpt-4", user_id=wallet.workspace_id, gateway_key_id=wallet.key_id, api="chat")

    settles = [finish_request(group, hold, Decimal("0.5"), usage(i), None) for i, hold in enumerate(holds)]
    settles.append(finish_request(group, holds[0], Decimal("0.25"), usage(0), None))  # settled already, otherwise
    charges = await asyncio.gather(*settles, return_exceptions=True)
    assert isinstance(charges[-1], LedgerError) and "already settled" in str(charges[-1])
    assert all(isinstance(c, Charge) and c.charged == Decimal("0.5") for c in charges[:-1])
    assert group.stats.fallbacks >= 1, "the batch holding the failing settle was sent again call by call"
    balance = await pool.fetchval("SELECT balance FROM user_credits WHERE user_id = $1", wallet.workspace_id)
    assert balance == Decimal(100) - 29 * Decimal("0.5")
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0
    assert await pool.fetchval("SELECT count(*) FROM ledger_reconciliation") == 0


async def test_a_wallet_locked_elsewhere_holds_up_only_its_own_calls(pool: asyncpg.Pool) -> None:
    busy, free = await make_wallet(pool, "100"), await make_wallet(pool, "100")
    group = GroupCommit(pool, BATCH_FORM, max_batch=64, in_flight=1)

    def begin_on(wallet: Wallet, i: int) -> Any:
        holds = {"balanced": (Decimal(1), Decimal(1))}
        usage = UsageRecord(f"req-{wallet.key_id}-{i}", "gpt-4", api="chat")
        return begin_request(group, wallet.key_hash, "balanced", holds, False, TTL, "test", usage, FACTS)

    async with pool.acquire() as other, other.transaction():  # an operator's (or maintenance's) long transaction
        await other.execute("SELECT 1 FROM user_credits WHERE user_id = $1 FOR UPDATE", busy.workspace_id)
        waiting = [asyncio.ensure_future(begin_on(busy, i)) for i in range(3)]
        served = await asyncio.wait_for(asyncio.gather(*(begin_on(free, i) for i in range(12))), timeout=10)
        assert all(b is not None and b.hold_state == "held" for b in served), "the free wallet's calls ran"
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in waiting), "the busy wallet's calls wait for its lock"
        assert group.stats.deferred >= 1
    begun = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert all(b is not None and b.hold_state == "held" for b in begun), "and run once it is free"
    held = await pool.fetchval("SELECT credits_held FROM user_credits WHERE user_id = $1", busy.workspace_id)
    assert held == 3


async def test_a_key_locked_elsewhere_that_needs_its_touch_waits_alone(pool: asyncpg.Pool) -> None:
    wallet, other_wallet = await make_wallet(pool, "100"), await make_wallet(pool, "100")
    await pool.execute("UPDATE gateway_api_keys SET last_used_at = NULL WHERE id = $1", wallet.key_id)
    group = GroupCommit(pool, BATCH_FORM, max_batch=64, in_flight=1)

    def begin_on(w: Wallet, i: int) -> Any:
        usage = UsageRecord(f"req-k-{w.key_id}-{i}", "gpt-4", api="chat")
        return begin_request(
            group, w.key_hash, "balanced", {"balanced": (Decimal(1), Decimal(1))}, False, TTL, "test", usage, FACTS
        )

    async with pool.acquire() as other, other.transaction():  # someone editing the key
        await other.execute("SELECT 1 FROM gateway_api_keys WHERE id = $1 FOR NO KEY UPDATE", wallet.key_id)
        waiting = asyncio.ensure_future(begin_on(wallet, 0))
        served = await asyncio.wait_for(asyncio.gather(*(begin_on(other_wallet, i) for i in range(6))), timeout=10)
        assert all(b is not None and b.hold_state == "held" for b in served)
        await asyncio.sleep(0.2)
        assert not waiting.done()
    begun = await asyncio.wait_for(waiting, timeout=10)
    assert begun is not None and begun.hold_state == "held"
    assert await pool.fetchval("SELECT last_used_at IS NOT NULL FROM gateway_api_keys WHERE id = $1", wallet.key_id)


async def test_a_budget_an_operator_is_editing_holds_up_only_its_own_wallet(pool: asyncpg.Pool) -> None:
    edited, other = await make_wallet(pool, "100"), await make_wallet(pool, "100")
    for wallet in (edited, other):
        await pool.execute(
            "INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period, hard)"
            " VALUES ($1, 'workspace', $2, 50, 'monthly', true)",
            wallet.workspace_id,
            str(wallet.workspace_id),
        )
    group = GroupCommit(pool, BATCH_FORM, max_batch=64, in_flight=1)
    calls = [(BEGIN, begin_args(w, Decimal(1), f"req-b-{w.key_id}-{i}")) for i in range(3) for w in (edited, other)]
    holds_of_other = "SELECT count(*) FROM credit_holds WHERE user_id = $1 AND status = 'held'"
    async with pool.acquire() as operator, operator.transaction():
        await operator.execute("UPDATE budgets SET amount = 60 WHERE workspace_id = $1", edited.workspace_id)
        # one batch holding both wallets' calls: it may not wait for the budget being edited
        batch = asyncio.ensure_future(group.send_together(calls))
        for _ in range(100):
            if await pool.fetchval(holds_of_other, other.workspace_id) == 3:
                break
            await asyncio.sleep(0.05)
        assert await pool.fetchval(holds_of_other, other.workspace_id) == 3, "the other wallet's calls committed"
        assert not batch.done(), "the edited wallet's calls wait for the edit"
        assert group.stats.deferred == 3
    rows = await asyncio.wait_for(batch, timeout=10)
    assert all(isinstance(row, asyncpg.Record) and row["hold_state"] == "held" for row in rows)
    assert await pool.fetchval("SELECT held FROM budgets WHERE workspace_id = $1", edited.workspace_id) == 3


async def test_while_a_call_waits_a_busy_wallets_lone_calls_take_one_connection(pool: asyncpg.Pool) -> None:
    busy, free = await make_wallet(pool, "100"), await make_wallet(pool, "100")
    group = GroupCommit(pool, BATCH_FORM, max_batch=64, in_flight=1, slow_after=0.05)

    def begin_on(w: Wallet, i: int) -> Any:
        usage = UsageRecord(f"req-s-{w.key_id}-{i}", "gpt-4", api="chat")
        return begin_request(
            group, w.key_hash, "balanced", {"balanced": (Decimal(1), Decimal(1))}, False, TTL, "test", usage, FACTS
        )

    waiting_on_locks = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM user_credits WHERE user_id = $1 FOR UPDATE", busy.workspace_id)
        waiting = []
        for i in range(8):  # one at a time, each alone when it arrives
            waiting.append(asyncio.ensure_future(begin_on(busy, i)))
            await asyncio.sleep(0.08)
        # the first went alone and waits; the others joined the wallet's one waiting statement
        assert await pool.fetchval(waiting_on_locks) <= 2
        served = await asyncio.wait_for(begin_on(free, 0), timeout=1)
        assert served is not None and served.hold_state == "held"
    begun = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)
    assert all(b is not None and b.hold_state == "held" for b in begun)

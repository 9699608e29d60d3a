"""Group commit: concurrent calls of stored functions sent as one statement, committed together.

`GroupCommit` is an Executor over a pool. A `fetchrow` of one of the statements its `BatchForm`
names joins the calls waiting to be sent; everything else goes straight to the pool. Waiting calls
are sent when no statement of this GroupCommit is in flight (or fewer than `in_flight`), as the
form's batch statement, whose function runs every element's call in the form's order in one
transaction (migration 0026). A lone call is sent as its own one-call statement (cheaper than a
batch of one, so a request at a time pays nothing for this); since it may wait for a lock held
elsewhere, a statement that has run for `slow_after` seconds stops counting against `in_flight`,
so a busy wallet holds up the other wallets' calls for at most that long, and while one is that
slow, lone calls go as batches too (which wait for nothing), so a busy wallet's calls take one
connection, not one each.
A caller's `fetchrow` returns only after the statement holding its call has committed, so
nothing is acknowledged before it is durable.

The batch statement takes no lock it would wait for: a call whose rows are locked elsewhere comes
back `deferred`, not run. The deferred calls of one wallet are sent again, in order and outside
the in-flight slot, as a statement that waits for that wallet's lock (the calls deferred for it
meanwhile gather into the next such statement): waiting for a lock holds up only that wallet's
calls. Every call of a batch statement that raised (for any reason but a lost connection) is sent
again alone, in order, also outside the slot: an error stays the call's own. A lost
connection fails every call of the batch with it: as for a single call, whether it committed is
unknown, and the callers' idempotent retries (ledger.db.background) settle that.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from ledger.db.background import CONNECTION_ERRORS
from ledger.db.executor import Executor

log = logging.getLogger("ledger.group_commit")


@dataclass(frozen=True, slots=True)
class BatchForm:
    """How calls of several one-call statements become one statement.

    `statements`: the one-call statements, in the order the batch runs their calls. `sql`: the batch
    statement; its first parameter says whether it waits for locks held elsewhere (else it defers
    the calls that would), then come, for each statement in that order, one array per parameter of
    it (element i of each array is that statement's i-th call's argument). It returns one row (or
    none) per call, whose `ord` is the call's 1-based position counting every call of the first
    statement, then of the second, and so on; a deferred call's row has `deferred` true and the
    wallet it waits for in `user_id`."""

    sql: str
    statements: tuple[str, ...]
    arities: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        arities = tuple(max((int(n) for n in re.findall(r"\$(\d+)", text)), default=0) for text in self.statements)
        object.__setattr__(self, "arities", arities)


@dataclass(slots=True)
class _Call:
    statement: str
    args: tuple[Any, ...]
    answer: asyncio.Future[Any]


@dataclass(slots=True)
class GroupCommitStats:
    """For the benchmarks: statements sent, the calls they carried, the batches that had to be
    sent again one call at a time, and the calls batches deferred."""

    statements: int = 0
    calls: int = 0
    fallbacks: int = 0
    deferred: int = 0  # calls a batch left to their wallet's waiting statement (rows locked elsewhere)


class GroupCommit:
    """An Executor that sends concurrent calls of `form`'s statements in batches (see the module's
    doc). `max_batch`: the most calls in one statement (1 sends each alone); `in_flight`: how many
    statements may run at once (calls arriving meanwhile wait, which is what makes a batch), not
    counting those that have run for `slow_after` seconds."""

    def __init__(
        self, db: Executor, form: BatchForm, *, max_batch: int = 64, in_flight: int = 1, slow_after: float = 0.05
    ) -> None:
        if max_batch < 1 or in_flight < 1:
            raise ValueError("a batch holds at least one call and at least one may be in flight")
        self.db = db
        self.form = form
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.slow_after = slow_after
        self.stats = GroupCommitStats()
        self._waiting: list[_Call] = []
        self._sending = 0
        self._slow = 0  # statements running past slow_after
        # deferred calls by the wallet they wait for; a wallet in _waiting_for has a statement
        # waiting for it, and its calls arriving meanwhile gather into the next one
        self._deferred: dict[Any, list[_Call]] = {}
        self._waiting_for: set[Any] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self.db.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.db.fetchval(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        if query not in self.form.statements:
            return await self.db.fetchrow(query, *args)
        call = _Call(query, args, asyncio.get_running_loop().create_future())
        self._waiting.append(call)
        self._send_if_free()
        return await call.answer

    async def send_together(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Sends `calls` ((statement, arguments) of the form's statements) as one batch now, as
        `fetchrow` would had they gathered: each one's row, or the exception its call raised (once
        every call, deferred or sent again alone, has its answer)."""
        loop = asyncio.get_running_loop()
        waiting = [_Call(statement, args, loop.create_future()) for statement, args in calls]
        await self._send_batch(waiting, wait=False)
        return list(await asyncio.gather(*(call.answer for call in waiting), return_exceptions=True))

    def _send_if_free(self) -> None:
        """Sends the waiting calls if a sending slot is free."""
        if self._waiting and self._sending < self.in_flight:
            self._send_next()

    def _send_next(self) -> None:
        calls, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        self._sending += 1
        self._start(self._send(calls), calls)

    async def _send(self, calls: list[_Call]) -> None:
        counted = True  # against in_flight: until it ends, or has run for slow_after seconds

        def slow() -> None:
            nonlocal counted
            counted = False
            self._sending -= 1
            self._slow += 1
            self._send_if_free()

        timer = asyncio.get_running_loop().call_later(self.slow_after, slow)
        try:
            # the one-call statement is cheaper than a batch of one; but while a statement is slow
            # (it may be waiting for a lock), a lone call too goes as a batch, which waits for
            # none: calls that would wait are each wallet's lane's, not one connection each
            if len(calls) == 1 and not self._slow:
                await self._send_alone(calls[0])
            else:
                await self._send_batch(calls, wait=False)
        finally:
            timer.cancel()
            if counted:
                self._sending -= 1
            else:
                self._slow -= 1
            self._send_if_free()

    async def _send_alone(self, call: _Call) -> None:
        self.stats.statements += 1
        self.stats.calls += 1
        try:
            row = await self.db.fetchrow(call.statement, *call.args)
        except Exception as exc:  # the caller's to handle, as if it had sent the call itself
            _answer(call, exception=exc)
        except BaseException as exc:
            _answer(call, exception=exc)
            raise
        else:
            _answer(call, row)

    def _send_alone_in_order(self, calls: list[_Call]) -> None:
        """Sends `calls` alone, one after another in their order, without holding a sending slot."""

        async def each() -> None:
            for call in calls:
                await self._send_alone(call)

        self._start(each(), calls)

    def _start(self, sending: Coroutine[Any, Any, None], calls: list[_Call]) -> None:
        task = asyncio.get_running_loop().create_task(sending)
        self._tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if task.cancelled():  # at shutdown, perhaps before it answered: its callers stop waiting
                for call in calls:
                    if not call.answer.done():
                        call.answer.cancel()

        task.add_done_callback(done)

    def _defer(self, wallet: Any, calls: list[_Call]) -> None:
        """Queues `calls` (deferred: their wallet was locked elsewhere) for the next statement that
        waits for `wallet`, started now unless one is in flight."""
        self.stats.deferred += len(calls)
        self._deferred.setdefault(wallet, []).extend(calls)
        if wallet not in self._waiting_for:
            self._waiting_for.add(wallet)
            self._start(self._wait_for(wallet), calls)

    async def _wait_for(self, wallet: Any) -> None:
        """Sends the calls deferred for `wallet`, in order, as statements that wait for its lock,
        until none is left."""
        try:
            while calls := self._deferred.pop(wallet, []):
                for start in range(0, len(calls), self.max_batch):
                    await self._send_batch(calls[start : start + self.max_batch], wait=True)
        finally:
            # the loop ends only when nothing is left, or by a cancellation (at shutdown): then
            # the calls deferred meanwhile have nobody to send them, and their callers stop waiting
            self._waiting_for.discard(wallet)
            for call in self._deferred.pop(wallet, []):
                if not call.answer.done():
                    call.answer.cancel()

    async def _send_batch(self, calls: list[_Call], *, wait: bool) -> None:
        form = self.form
        ordered: list[_Call] = []
        arrays: list[list[Any]] = []
        for statement, arity in zip(form.statements, form.arities, strict=True):
            of_statement = [call for call in calls if call.statement == statement]
            ordered += of_statement
            arrays += [[call.args[i] for call in of_statement] for i in range(arity)]
        self.stats.statements += 1
        self.stats.calls += len(calls)
        try:
            rows = await self.db.fetch(form.sql, wait, *arrays)
        except CONNECTION_ERRORS as exc:
            for call in ordered:
                _answer(call, exception=exc)
            return
        except Exception as exc:
            self.stats.fallbacks += 1
            log.info("a batch of %d calls failed (%s); sending each alone", len(calls), type(exc).__name__)
            self._send_alone_in_order(ordered)
            return
        except BaseException as exc:
            for call in ordered:
                _answer(call, exception=exc)
            raise
        answers = {row["ord"]: row for row in rows}
        deferred: dict[Any, list[_Call]] = {}  # wallet -> its calls, in the batch's order
        for position, call in enumerate(ordered, start=1):
            row = answers.get(position)
            if row is not None and row["deferred"]:
                deferred.setdefault(row["user_id"], []).append(call)
            else:
                _answer(call, row)
        for wallet, calls_of_wallet in deferred.items():
            if wait:  # cannot happen (a waiting statement defers nothing): alone, as a last resort
                self._send_alone_in_order(calls_of_wallet)
            else:
                self._defer(wallet, calls_of_wallet)


def _answer(call: _Call, row: Any = None, *, exception: BaseException | None = None) -> None:
    if call.answer.done():  # its caller was cancelled: nobody waits for it
        return
    if exception is not None:
        call.answer.set_exception(exception)
    else:
        call.answer.set_result(row)

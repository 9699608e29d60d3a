"""How many metered requests a second the ledger's SQL path takes, on one hot account (every
request queues on one row lock) and spread over 64 accounts, three ways in one run:

- `reserve + settle`: reserve_credits then settle-and-log, one statement each (the figure of the
  benchmarks before issue 21);
- `one by one`: the service's two calls (begin_llm_request by key, settle_llm_request), each its
  own statement and commit;
- `group commit`: the same calls through ledger.db.group_commit, as `ledger serve` sends them.

    python scripts/bench/ledger_throughput.py [--requests 2000] [--concurrency 16]

It starts its own embedded PostgreSQL (throw-away; fsync on, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.db.embedded import EmbeddedPostgres
from ledger.db.executor import Executor
from ledger.db.group_commit import GroupCommit
from ledger.db.migrations import migrate_url
from ledger.db.pool import create_pool
from ledger.gateway.keys import create_key, hash_key
from ledger.money import accounts as users
from ledger.money import credits
from ledger.money.holds import reserve_credits
from ledger.money.usage import BATCH_FORM, UsageRecord, begin_request, finish_request

Account = tuple[uuid.UUID, str]  # (user_id, key hash)
HOLDS = {"balanced": (Decimal("0.05"), Decimal(1))}
FACTS = {"model": "gpt-4", "end_user": None, "client_ip": "127.0.0.1", "tokens": 300, "providers": ["openai"]}


def usage_of(request_id: str, user_id: uuid.UUID | None) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        user_id=user_id,
        gateway_key_id=None,
        model="gpt-4",
        power_level="balanced",
        provider="openai",
        prompt_tokens=100,
        completion_tokens=200,
        cost_usd=Decimal("0.015"),
        cost_multiplier=Decimal(1),
        latency_ms=1,
        status_code=200,
        api="chat",
    )


async def reserve_and_settle(db: Executor, account: Account) -> None:
    request_id = f"req_{uuid.uuid4().hex}"
    hold = await reserve_credits(db, account[0], Decimal("0.05"), request_id)
    await finish_request(db, hold.hold_id, Decimal("0.015"), usage_of(request_id, account[0]), None)


async def begin_and_settle(db: Executor, account: Account) -> None:
    request_id = f"req_{uuid.uuid4().hex}"
    usage = usage_of(request_id, None)
    begun = await begin_request(db, account[1], "balanced", HOLDS, False, timedelta(minutes=15), "bench", usage, FACTS)
    assert begun is not None and begun.reservation is not None and begun.reservation.success
    usage.user_id, usage.gateway_key_id = begun.user_id, begun.key_id
    await finish_request(db, begun.reservation.hold_id, Decimal("0.015"), usage, None)


async def scenario(
    db: Executor,
    request: Callable[[Executor, Account], Awaitable[None]],
    accounts: list[Account],
    n: int,
    concurrency: int,
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await request(db, accounts[i % len(accounts)])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    return time.perf_counter() - started, latencies


async def main_async(args: argparse.Namespace, url: str) -> int:
    await migrate_url(url)
    pool = await create_pool(url, min_size=args.concurrency, max_size=args.concurrency)
    batched = GroupCommit(pool, BATCH_FORM, max_batch=64, in_flight=args.in_flight)
    accounts: list[Account] = []
    for i in range(64):
        user = await users.create_user(pool, f"bench{i}@example.com")
        await credits.add_user_credits(pool, user["user_id"], Decimal(1_000_000), "bonus", f"bench-{i}")
        key = await create_key(pool, user["user_id"], "bench")
        accounts.append((user["user_id"], hash_key(key.key)))
    ways: list[tuple[str, Executor, Callable[[Executor, Account], Awaitable[None]]]] = [
        ("reserve + settle", pool, reserve_and_settle),
        ("one by one", pool, begin_and_settle),
        ("group commit", batched, begin_and_settle),
    ]
    for _, db, request in ways:  # warm up
        await scenario(db, request, accounts, min(200, args.requests), args.concurrency)
    figures: dict[tuple[str, str], float] = {}
    print(f"{args.requests} requests, {args.concurrency} at once, fsync on")
    for label, spread in (("one hot account", accounts[:1]), ("64 accounts", accounts)):
        for way, db, request in ways:
            wall, latencies = await scenario(db, request, spread, args.requests, args.concurrency)
            ordered = sorted(latencies)
            figures[label, way] = args.requests / wall
            print(
                f"{label:16} {way:17}: {args.requests / wall:7.0f} requests/s  "
                f"p50 {statistics.median(latencies) * 1000:6.2f} ms  "
                f"p99 {ordered[int(0.99 * len(ordered))] * 1000:6.2f} ms"
            )
    stats = batched.stats
    print(
        f"group commit: {stats.calls} calls in {stats.statements} statements "
        f"({stats.calls / max(stats.statements, 1):.1f} a statement), {stats.fallbacks} sent again one by one"
    )
    hot = figures["one hot account", "group commit"] / figures["one hot account", "reserve + settle"]
    verdict = "PASS" if hot >= 3 else "MISS"
    print(f"one hot account, group commit / reserve + settle: {hot:.2f}x (target >= 3x: {verdict})")
    problems = await pool.fetch("SELECT * FROM ledger_reconciliation")
    held = await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'")
    print(f"reconciliation problems after the run: {len(problems)}; holds left open: {held}")
    print(json.dumps({f"{label} / {way}": round(value) for (label, way), value in figures.items()}))
    await pool.close()
    return 1 if problems or held else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=1, help="group commit statements of one kind at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        with server.running():
            status = asyncio.run(main_async(args, server.url()))
    sys.exit(status)


if __name__ == "__main__":
    main()

"""How many metered requests a second the ledger's SQL path takes: reserve + settle-and-log pairs,
on one hot account (every request queues on one row lock) and spread over many accounts, in one run.

    python scripts/bench/ledger_throughput.py [--requests 2000] [--concurrency 16]

It starts its own embedded PostgreSQL (throw-away; fsync on, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url
from ledger.db.pool import create_pool
from ledger.money import accounts as users
from ledger.money import credits
from ledger.money.holds import reserve_credits
from ledger.money.usage import UsageRecord, finish_request


async def one_request(pool, user_id: uuid.UUID, latencies: list[float]) -> None:
    started = time.perf_counter()
    request_id = f"req_{uuid.uuid4().hex}"
    hold = await reserve_credits(pool, user_id, Decimal("0.05"), request_id)
    usage = UsageRecord(
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
    )
    await finish_request(pool, hold.hold_id, Decimal("0.15"), usage, None)
    latencies.append(time.perf_counter() - started)


async def scenario(pool, accounts: list[uuid.UUID], n: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            await one_request(pool, accounts[i % len(accounts)], latencies)

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    return time.perf_counter() - started, latencies


async def main_async(args: argparse.Namespace, url: str) -> int:
    await migrate_url(url)
    pool = await create_pool(url, min_size=args.concurrency, max_size=args.concurrency)
    accounts = []
    for i in range(64):
        user = await users.create_user(pool, f"bench{i}@example.com")
        await credits.add_user_credits(pool, user["user_id"], Decimal(1_000_000), "bonus", f"bench-{i}")
        accounts.append(user["user_id"])
    await scenario(pool, accounts, min(200, args.requests), args.concurrency)  # warm up
    for label, spread in (("one hot account", accounts[:1]), ("64 accounts", accounts)):
        wall, latencies = await scenario(pool, spread, args.requests, args.concurrency)
        ordered = sorted(latencies)
        print(
            f"{label:16}: {args.requests / wall:7.0f} requests/s  "
            f"p50 {statistics.median(latencies) * 1000:6.2f} ms  "
            f"p99 {ordered[int(0.99 * len(ordered))] * 1000:6.2f} ms  (reserve + settle, {args.concurrency} at once)"
        )
    problems = await pool.fetch("SELECT * FROM ledger_reconciliation")
    print(f"reconciliation problems after the run: {len(problems)}")
    await pool.close()
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        with server.running():
            status = asyncio.run(main_async(args, server.url()))
    sys.exit(status)


if __name__ == "__main__":
    main()

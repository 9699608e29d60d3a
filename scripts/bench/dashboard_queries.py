"""How long the dashboards' reads take on a ledger with a long history: the end user's account page
(owner_account, 10 requests, 10 transactions, the 30-day chart) and the operator's overview (its
14 ops queries in one snapshot, as /admin/dashboard runs them), median of several views.

    python scripts/bench/dashboard_queries.py [--rows 1000000] [--users 1000] [--views 5]

It starts its own embedded PostgreSQL (throw-away) and writes usage rows spread over a year
straight into llm_usage_log (the pages only read it), plus purchases in stripe_payments.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.web.admin_pages import OVERVIEW_QUERIES
from ledger.billing.subscriptions import owner_account
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url
from ledger.db.pool import create_pool
from ledger.money import accounts as users
from ledger.money.history import transactions_page, usage_by_day, usage_page
from ledger.ops import fetch_ops

SEED_USAGE = """
INSERT INTO llm_usage_log (request_id, user_id, model, provider, power_level, prompt_tokens, completion_tokens,
                           total_tokens, cost_usd, credits_used, latency_ms, success, status_code, created_at)
SELECT 'bench_' || i, ($1::uuid[])[1 + i % array_length($1::uuid[], 1)],
       (ARRAY['gpt-4', 'gpt-4o-mini', 'claude-3-haiku', 'claude-sonnet-4-5'])[1 + i % 4],
       (ARRAY['openai', 'anthropic', 'openrouter'])[1 + i % 3], 'balanced', 100, 50, 150, 0.001, 0.01,
       120, i % 50 <> 0, CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END,
       now() - (i::float8 / $2) * interval '365 days'
  FROM generate_series(1, $2) AS i
"""
SEED_PAYMENTS = """
INSERT INTO stripe_payments (payment_intent_id, user_id, amount_cents, currency, credits, status, paid_at, created_at)
SELECT 'pi_bench_' || i, ($1::uuid[])[1 + i % array_length($1::uuid[], 1)], 4500, 'usd', 500, 'paid',
       now() - (i::float8 / $2) * interval '365 days', now() - (i::float8 / $2) * interval '365 days'
  FROM generate_series(1, $2) AS i
"""


async def timed(views: int, read) -> float:
    """The median seconds of one view."""
    times = []
    for _ in range(views):
        started = time.perf_counter()
        await read()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main_async(args: argparse.Namespace, url: str) -> None:
    await migrate_url(url)
    pool = await create_pool(url, min_size=2, max_size=4, command_timeout=3600)
    ids = [(await users.create_user(pool, f"bench{i}@example.com"))["user_id"] for i in range(args.users)]
    started = time.perf_counter()
    await pool.execute(SEED_USAGE, ids, args.rows)
    await pool.execute(SEED_PAYMENTS, ids, args.rows // 100)
    await pool.execute("ANALYZE")
    took = time.perf_counter() - started
    print(f"seeded {args.rows:,} usage rows over a year for {args.users:,} users in {took:.0f} s")
    user = ids[0]

    async def user_page() -> None:
        await owner_account(pool, user)
        await usage_page(pool, user, None, None, None, None, 10)
        await transactions_page(pool, user, None, None, None, None, 10)
        await usage_by_day(pool, user, 30)

    async def admin_overview() -> None:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            for name in OVERVIEW_QUERIES:
                await fetch_ops(conn, name)

    print(f"user's account page : {await timed(args.views, user_page) * 1000:8.1f} ms a view (SQL only)")
    print(f"operator's overview : {await timed(args.views, admin_overview) * 1000:8.1f} ms a view (SQL only)")
    async with pool.acquire() as conn:
        for name in OVERVIEW_QUERIES:
            one = await timed(max(1, args.views // 2), lambda name=name: fetch_ops(conn, name))
            print(f"  {name:24} {one * 1000:8.1f} ms")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--views", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        with server.running():
            asyncio.run(main_async(args, server.url()))


if __name__ == "__main__":
    main()

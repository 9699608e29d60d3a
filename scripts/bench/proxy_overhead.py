"""What the metering adds to a request: the same calls straight to a fake upstream and through the
service, in one run, reported as a ratio (time figures on a shared machine are noisy alone).

    python scripts/bench/proxy_overhead.py [--requests 500] [--concurrency 20]

It starts its own embedded PostgreSQL (throw-away, fsync off), the service on uvicorn and a fake
upstream with no latency, so what it measures is the service's own cost per request: key lookup,
hold, forward, settle-and-log.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.app import create_app
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url
from ledger.db.pool import create_pool
from ledger.gateway import keys as gateway_keys
from ledger.money import accounts as users
from ledger.money import credits
from ledger.settings import ProviderConfig, Settings
from tests.fake_upstream import FakeUpstream, ServerThread, free_port

BODY = {"model": "gpt-4", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            response = await client.post(url, json=BODY, headers=headers)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    await asyncio.gather(*(one() for _ in range(n)))
    return latencies


async def prepare(url: str, n: int) -> str:
    pool = await create_pool(url, min_size=1, max_size=2)
    user = await users.create_user(pool, "bench@example.com")
    await credits.add_user_credits(pool, user["user_id"], Decimal(10 * n), "bonus", "bench")
    key = await gateway_keys.create_key(pool, user["user_id"], "bench")
    await pool.close()
    return key.key


def report(name: str, direct: list[float], proxied: list[float], wall_direct: float, wall_proxied: float) -> None:
    def ms(x: float) -> str:
        return f"{x * 1000:7.2f} ms"

    print(f"\n{name}: {len(direct)} requests")
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        d, p = percentile(direct, q), percentile(proxied, q)
        print(f"  {label}: direct {ms(d)}  proxied {ms(p)}  added {ms(p - d)}  ratio {p / d:5.2f}")
    print(f"  mean added: {ms(statistics.mean(proxied) - statistics.mean(direct))}")
    rates = f"direct {len(direct) / wall_direct:7.0f}/s  proxied {len(proxied) / wall_proxied:7.0f}/s"
    print(f"  throughput: {rates}")


async def run(args: argparse.Namespace, database_url: str) -> None:
    await migrate_url(database_url)
    key = await prepare(database_url, args.requests * 2)
    upstream = FakeUpstream("openai", usage=(12, 20))
    upstream.server = ServerThread(upstream.app()).start()
    settings = Settings(
        database_url=database_url,
        providers={"openai": ProviderConfig(base_url=upstream.base_url)},
        pool_min_size=5,
        pool_max_size=20,
    )
    port = free_port()
    service = ServerThread(create_app(settings, database_url, port=port), port=port).start()
    try:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:
            direct_url = f"{upstream.base_url}/chat/completions"
            proxied_url = f"{service.url}/v1/chat/completions"
            auth = {"Authorization": f"Bearer {key}"}
            await timed(client, proxied_url, auth, 50, 5)  # warm up pools and caches
            for concurrency in (1, args.concurrency):
                started = time.perf_counter()
                direct = await timed(client, direct_url, {}, args.requests, concurrency)
                wall_direct = time.perf_counter() - started
                started = time.perf_counter()
                proxied = await timed(client, proxied_url, auth, args.requests, concurrency)
                wall_proxied = time.perf_counter() - started
                report(f"concurrency {concurrency}", direct, proxied, wall_direct, wall_proxied)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak RSS of this process (service + fake upstream + client): {rss_mb:.0f} MB")
    finally:
        service.stop()
        upstream.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedPostgres(Path(data_dir), durable=False)
        with server.running():
            asyncio.run(run(args, server.url()))


if __name__ == "__main__":
    main()

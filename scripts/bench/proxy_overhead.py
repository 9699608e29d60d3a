"""What metering costs a request, against what any proxy costs: in one run, the same chat
completion (non-streamed and streamed) sent

  direct   straight to a fake upstream that answers at once (instant_upstream.py),
  bare     through a pass-through with no billing on the service's server stack (bare_proxy.py:
           Starlette, uvicorn with uvloop + httptools, one aiohttp ClientSession), the ceiling,
  metered  through `ledger serve` itself, on an embedded PostgreSQL, as a user with plenty of credits,
  controlled  the same, with a monthly budget and a rate limit (requests per window) on the key,
           neither reached: every control is checked and taken in the hold's own SQL call
           (--heavy-controls adds tokens per minute and concurrency to the limit),

first one request at a time (latency; "added" is the p50 over direct's), then from 64 connections at
once (requests/s). Then it checks the books: the reconciliation view is empty, no hold is left open,
and there is one usage row per metered request answered 200.

    python scripts/bench/proxy_overhead.py [--requests 2000] [--duration 10] [--workers 1] [--pin]

Every server is a process of its own and the load generator (an aiohttp client on keep-alive
connections) is this process. Unpinned, the OS spreads them over the cores; --pin puts the load
generator and the upstream on the first core and the server under test and PostgreSQL on the
others. The CPU columns say where the time went at 64 connections (ms of CPU per request).
PostgreSQL runs with fsync off unless --durable (what is measured is the service, not the disk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url
from ledger.gateway.keys import hash_key

BENCH = Path(__file__).resolve().parent
LEDGER = str(Path(sys.executable).parent / "ledger")
MESSAGES = [{"role": "user", "content": "Say hello."}]
BODIES = {
    "json": json.dumps({"model": "gpt-4", "messages": MESSAGES, "max_tokens": 64}).encode(),
    "stream": json.dumps({"model": "gpt-4", "messages": MESSAGES, "max_tokens": 64, "stream": True}).encode(),
}
Processes = Callable[[], list[psutil.Process]]  # read when measured: workers and backends come and go
TARGET_RATIO = 0.4  # metered requests/s over bare at 64 connections, at least
TARGET_ADDED_MS = 1.0  # metered p50 over direct p50, one at a time, at most
TARGET_CONTROLS_RATIO = 0.8  # controlled requests/s over metered at 64 connections, at least


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    pid: int | None  # the server's process (its children count too); None: nothing between


@dataclass
class Measure:
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    failures: int = 0
    first_failure: str | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of CPU by role

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall


# -- processes -------------------------------------------------------------------------------


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (a URL this script made)
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP answer, whatever its status
    except OSError:
        return False


def wait_until(ready: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Until `ready` (a URL) answers or (a word) is in the log."""
    deadline = time.monotonic() + timeout
    while not (answers(ready) if ready.startswith("http") else ready in log.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{' '.join(map(str, process.args))} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds each process has used; read again after a phase, the difference counts
    processes born during it (a new PostgreSQL backend) from zero."""
    used = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def pin(processes: list[psutil.Process], cpus: list[int]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.cpu_affinity(cpus)


# -- load ------------------------------------------------------------------------------------


async def one(session: aiohttp.ClientSession, target: Target, body: bytes, measure: Measure) -> None:
    started = time.perf_counter()
    try:
        async with session.post(target.url, data=body, headers=target.headers) as response:
            answer = await response.read()
            failure = None if response.status == 200 else f"{response.status} {answer[:300]!r}"
    except aiohttp.ClientError as exc:
        failure = repr(exc)
    if failure is None:
        measure.latencies.append(time.perf_counter() - started)
    else:
        measure.failures += 1
        measure.first_failure = measure.first_failure or f"{target.name}: {failure}"


async def sequential(session: aiohttp.ClientSession, target: Target, body: bytes, n: int) -> Measure:
    measure = Measure()
    started = time.perf_counter()
    for _ in range(n):
        await one(session, target, body, measure)
    measure.wall = time.perf_counter() - started
    return measure


async def concurrent(
    session: aiohttp.ClientSession, target: Target, body: bytes, connections: int, seconds: float
) -> Measure:
    measure = Measure()
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        while time.perf_counter() < deadline:
            await one(session, target, body, measure)

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    measure.wall = time.perf_counter() - started
    return measure


@dataclass
class Results:
    sequential: dict[tuple[str, str], Measure] = field(default_factory=dict)  # (target, kind)
    concurrent: dict[tuple[str, str], Measure] = field(default_factory=dict)
    metered_ok: int = 0  # metered requests answered 200, warm-ups included
    failures: int = 0
    first_failure: str | None = None


async def load(args: argparse.Namespace, targets: list[Target], roles: dict[str, Processes]) -> Results:
    """roles: the processes whose CPU is reported besides the server's and the load generator's."""
    results = Results()
    kinds = ["json"] if args.no_stream else ["json", "stream"]

    def session(connections: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))

    def count(target: Target, measure: Measure) -> Measure:
        if target.name in ("metered", "controlled"):
            results.metered_ok += len(measure.latencies)
        results.failures += measure.failures
        results.first_failure = results.first_failure or measure.first_failure
        return measure

    for kind in kinds:
        for target in targets:
            async with session(1) as client:
                count(target, await sequential(client, target, BODIES[kind], min(50, args.requests)))  # warm-up
                results.sequential[target.name, kind] = count(
                    target, await sequential(client, target, BODIES[kind], args.requests)
                )
    for kind in kinds:
        for target in targets:
            async with session(args.concurrency) as client:
                warm_up = min(1.0, args.duration)
                count(target, await concurrent(client, target, BODIES[kind], args.concurrency, warm_up))
                # the load generator is this process alone: the servers are its children
                watched = {**roles, "server": lambda pid=target.pid: tree(pid), "loadgen": lambda: [psutil.Process()]}
                before = {role: cpu_by_pid(processes()) for role, processes in watched.items()}
                measure = await concurrent(client, target, BODIES[kind], args.concurrency, args.duration)
                for role, processes in watched.items():
                    after = cpu_by_pid(processes())
                    measure.cpu[role] = sum(used - before[role].get(p, 0.0) for p, used in after.items())
                results.concurrent[target.name, kind] = count(target, measure)
    return results


# -- the run ---------------------------------------------------------------------------------


async def admin_account(base: str, token: str, email: str = "bench@example.com") -> str:
    """A user with a million credits and a key, made through the admin API."""
    admin = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(raise_for_status=True) as client:
        async with client.post(f"{base}/admin/users", json={"email": email}, headers=admin) as r:
            user_id = (await r.json())["user_id"]
        grant = {"amount": "1000000", "transaction_type": "bonus", "reference": f"bench {email}"}
        async with client.post(f"{base}/admin/users/{user_id}/credits", json=grant, headers=admin):
            pass
        async with client.post(f"{base}/admin/users/{user_id}/keys", json={"name": "bench"}, headers=admin) as r:
            return str((await r.json())["key"])


async def put_controls_on(url: str, key: str, heavy: bool) -> None:
    """A monthly budget and a rate limit on the key, none of which the run reaches: what is
    measured is what checking and taking them costs each request."""
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchrow("SELECT id, user_id FROM gateway_api_keys WHERE key_hash = $1", hash_key(key))
        await conn.execute(
            """INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period)
               VALUES ($1, 'key', $2, 1000000, 'monthly')""",
            found["user_id"],
            str(found["id"]),
        )
        await conn.execute(
            """INSERT INTO rate_limits (workspace_id, scope_type, scope_id, strategy, requests, window_seconds,
                                        tokens_per_minute, max_concurrent)
               VALUES ($1, 'key', $2, 'token_bucket', 10000, 1, $3, $4)""",
            found["user_id"],
            str(found["id"]),
            1_000_000_000 if heavy else None,
            10_000 if heavy else None,
        )
    finally:
        await conn.close()


async def books(url: str) -> tuple[int, int, int]:
    """Reconciliation problems, open holds, usage rows."""
    conn = await asyncpg.connect(url)
    try:
        problems = await conn.fetchval("SELECT count(*) FROM ledger_reconciliation")
        held = await conn.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'")
        usage = await conn.fetchval("SELECT count(*) FROM llm_usage_log")
    finally:
        await conn.close()
    return problems, held, usage


@dataclass
class Servers:
    upstream: subprocess.Popen[bytes]
    upstream_url: str  # the OpenAI base URL: .../v1
    bare: subprocess.Popen[bytes]
    bare_url: str
    service: subprocess.Popen[bytes]
    service_url: str
    admin_token: str


@contextlib.contextmanager
def servers(args: argparse.Namespace, work: Path, database_url: str) -> Iterator[Servers]:
    """The upstream, the bare pass-through and `ledger serve`, each a process; stopped after."""
    upstream_port, bare_port, service_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    started: list[subprocess.Popen[bytes]] = []
    try:
        upstream_command = [sys.executable, str(BENCH / "instant_upstream.py"), str(upstream_port)]
        upstream = start(upstream_command, work / "upstream.log")
        started.append(upstream)
        wait_until("ready", upstream, work / "upstream.log")
        bare_command = [sys.executable, str(BENCH / "bare_proxy.py"), "--port", str(bare_port)]
        bare = start([*bare_command, "--upstream", upstream_url], work / "bare.log")
        started.append(bare)
        token = secrets.token_urlsafe(24)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env |= {
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_PROVIDERS": json.dumps({"openai": {"base_url": upstream_url}}),
            "LEDGER_ADMIN_TOKEN": token,
            "LEDGER_GROUP_COMMIT_MAX_BATCH": str(args.group_commit_max_batch),
        }
        service_command = [LEDGER, "serve", "--port", str(service_port), "--workers", str(args.workers)]
        service = start(service_command, work / "service.log", env)
        started.append(service)
        bare_url, service_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{service_port}"
        wait_until(f"{bare_url}/", bare, work / "bare.log")
        wait_until(f"{service_url}/healthz", service, work / "service.log")
        yield Servers(upstream, upstream_url, bare, bare_url, service, service_url, token)
    finally:
        for process in reversed(started):
            stop(process)


def run(args: argparse.Namespace, work: Path, server: EmbeddedPostgres) -> int:
    database_url = server.url()
    asyncio.run(migrate_url(database_url))
    postmaster = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin:
        if len(cpus) < 2:
            raise SystemExit("--pin needs two cores or more")
        pin(tree(postmaster), cpus[1:])  # before the service connects: backends inherit the postmaster's
    with servers(args, work, database_url) as up:
        if args.pin:
            pin([psutil.Process(), *tree(up.upstream.pid)], cpus[:1])
            pin([*tree(up.bare.pid), *tree(up.service.pid)], cpus[1:])
        key = asyncio.run(admin_account(up.service_url, up.admin_token))
        controlled_key = asyncio.run(admin_account(up.service_url, up.admin_token, "controlled@example.com"))
        asyncio.run(put_controls_on(database_url, controlled_key, args.heavy_controls))
        json_header = {"Content-Type": "application/json"}
        targets = [
            Target("direct", f"{up.upstream_url}/chat/completions", json_header, None),
            Target("bare", f"{up.bare_url}/v1/chat/completions", json_header, up.bare.pid),
            Target(
                "metered",
                f"{up.service_url}/v1/chat/completions",
                {**json_header, "Authorization": f"Bearer {key}"},
                up.service.pid,
            ),
            Target(
                "controlled",
                f"{up.service_url}/v1/chat/completions",
                {**json_header, "Authorization": f"Bearer {controlled_key}"},
                up.service.pid,
            ),
        ]
        roles: dict[str, Processes] = {"postgres": lambda: tree(postmaster), "upstream": lambda: tree(up.upstream.pid)}
        results = run_load(args, targets, roles)
    # the service is stopped (settles retried in the background had their chance): count the books
    problems, held, usage = asyncio.run(books(database_url))
    report(args, results)
    reconciled = problems == 0 and held == 0 and usage == results.metered_ok and results.failures == 0
    print(
        f"\nbooks: {problems} reconciliation problems, {held} holds open, {usage} usage rows for "
        f"{results.metered_ok} metered requests answered 200, {results.failures} requests failed: "
        + ("reconciled" if reconciled else "NOT RECONCILED")
    )
    if results.first_failure:
        print(f"first failure: {results.first_failure}")
    return 0 if reconciled else 1


def run_load(args: argparse.Namespace, targets: list[Target], roles: dict[str, Processes]) -> Results:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(load(args, targets, roles))
    return uvloop.run(load(args, targets, roles))


# -- the report ------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: Results) -> None:
    cores = os.cpu_count()
    placement = (
        "pinned: load generator + upstream on the first core, server under test + PostgreSQL on the rest"
        if args.pin
        else "unpinned: the OS spreads load generator, upstream, server and PostgreSQL over the cores"
    )
    print(f"\nproxy overhead on {cores} cores, load average {os.getloadavg()[0]:.2f} at the end ({placement})")
    print(
        f"PostgreSQL: embedded, fsync {'on' if args.durable else 'off'}; "
        f"metered: ledger serve --workers {args.workers}; "
        f"sequential: {args.requests} requests; concurrent: {args.concurrency} connections for {args.duration:g} s"
    )
    roles = ["server", "postgres", "upstream", "loadgen"]
    print(
        f"\n{'':19}|{'one at a time':^27}|{f'{args.concurrency} connections':^27}|"
        f"{'CPU ms per request, concurrent':^36}\n"
        f"{'target':<11}{'kind':<8}|{'p50 ms':>9}{'p99 ms':>9}{'added':>9}|{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}|"
        + "".join(f"{role:>9}" for role in roles)
    )
    for (name, kind), seq in results.sequential.items():
        direct = results.sequential["direct", kind]
        added = "" if name == "direct" else f"{seq.quantile(0.5) - direct.quantile(0.5):+.2f}"
        con = results.concurrent[name, kind]
        cpu = "".join(f"{con.cpu[role] * 1000 / max(1, len(con.latencies)):9.3f}" for role in roles)
        print(
            f"{name:<11}{kind:<8}|{seq.quantile(0.5):9.2f}{seq.quantile(0.99):9.2f}{added:>9}|"
            f"{con.rate:9.0f}{con.quantile(0.5):9.2f}{con.quantile(0.99):9.2f}|{cpu}"
        )
    ratio = results.concurrent["metered", "json"].rate / results.concurrent["bare", "json"].rate
    added = results.sequential["metered", "json"].quantile(0.5) - results.sequential["direct", "json"].quantile(0.5)
    print("\ntargets (non-streamed):")
    print(
        f"  metered / bare requests/s at {args.concurrency} connections: {ratio:5.2f}x  "
        f"(target >= {TARGET_RATIO:.2f}x)  {'PASS' if ratio >= TARGET_RATIO else 'MISS'}"
    )
    print(
        f"  metered p50 - direct p50, one at a time:      {added:5.2f} ms  "
        f"(target <= {TARGET_ADDED_MS:.2f} ms)  {'PASS' if added <= TARGET_ADDED_MS else 'MISS'}"
    )
    controls = results.concurrent["controlled", "json"].rate / results.concurrent["metered", "json"].rate
    print(
        f"  controlled / metered requests/s at {args.concurrency} connections: {controls:5.2f}x  "
        f"(target >= {TARGET_CONTROLS_RATIO:.2f}x)  {'PASS' if controls >= TARGET_CONTROLS_RATIO else 'MISS'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests one at a time, per target and kind")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of concurrent load, per target and kind")
    parser.add_argument("--concurrency", type=int, default=64, help="connections at once")
    parser.add_argument("--workers", type=int, default=1, help="ledger serve --workers")
    parser.add_argument("--pin", action="store_true", help="pin load + upstream to one core, the rest to the others")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync on, as in production")
    parser.add_argument(
        "--group-commit-max-batch", type=int, default=64, help="the service's group commit (1: every call alone)"
    )
    parser.add_argument("--no-stream", action="store_true", help="measure the non-streamed request only")
    parser.add_argument(
        "--heavy-controls", action="store_true", help="the controlled key's limit counts tokens and concurrency too"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="proxy-overhead-") as scratch:
        work = Path(scratch)
        server = EmbeddedPostgres(work / "postgres", durable=args.durable)
        with server.running():
            status = run(args, work, server)
        if status:
            for log in sorted(work.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()

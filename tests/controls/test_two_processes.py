"""Two `ledger serve` processes on one database share a key's rate limit exactly: the state lives
in PostgreSQL and is checked in the hold's own SQL call, so no other server is needed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.controls.sql_requests import make_wallet
from tests.fake_upstream import free_port

LEDGER = str(Path(sys.executable).parent / "ledger")
DEMO_CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}


@pytest.fixture
def two_services(database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env = {**clean, "LEDGER_DATABASE_URL": database_url}
    processes, urls = [], []
    for n in range(2):
        port = free_port()
        log = open(tmp_path / f"serve{n}.log", "w")  # noqa: SIM115 (closed with the process)
        processes.append(
            subprocess.Popen([LEDGER, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for process, url in zip(processes, urls, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, "ledger serve exited early"
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "ledger serve did not become ready"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.parametrize(
    ("strategy", "served"),
    [("sliding_window", 5), ("fixed_window", 5), ("token_bucket", 5), ("leaky_bucket", 1)],
)
async def test_two_processes_serve_exactly_the_limit_between_them(pool, two_services, strategy, served):
    wallet = await make_wallet(pool)
    await pool.execute(
        """INSERT INTO rate_limits (workspace_id, scope_type, scope_id, strategy, requests, window_seconds)
           VALUES ($1, 'key', $2, $3, 5, 3600)""",
        wallet.workspace_id,
        str(wallet.key_id),
        strategy,
    )
    headers = {"Authorization": f"Bearer {wallet.key}"}
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(f"{two_services[n % 2]}/v1/chat/completions", json=DEMO_CHAT, headers=headers)
                for n in range(16)
            )
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * served + [429] * (16 - served), [
        a.text for a in answers if a.status_code not in (200, 429)
    ]
    limited = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.json()["error"]["code"] == "rate_limit_exceeded" for answer in limited)
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in limited)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM llm_usage_log WHERE gateway_key_id = $1 AND rate_limited", wallet.key_id
        )
        == 16 - served
    )
    assert await pool.fetchval("SELECT count(*) FROM credit_holds WHERE status = 'held'") == 0
    assert isinstance(pool, asyncpg.Pool)

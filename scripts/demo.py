"""The product end to end in one minute, on a throw-away embedded database:

    python scripts/demo.py

starts `ledger serve` (demo provider, embedded PostgreSQL), creates a user and a gateway key with
the CLI, makes a metered call, a streamed one and one through each other API (responses,
embeddings, completions, Anthropic's messages), and shows the balance, the ledger and an ops query.
Nothing is left behind: the data directory is temporary and the server stops at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LEDGER = str(Path(sys.executable).parent / "ledger")


def step(title: str) -> None:
    print(f"\n== {title}")


def ledger(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([LEDGER, *args], env=env, check=True, capture_output=True, text=True).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("ledger serve exited; run it by hand to see why")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("ledger serve did not become ready")


def demo(base: str, env: dict[str, str]) -> None:
    step("an operator creates a user (trial: 100 allowance credits this month) and a gateway key")
    user = json.loads(ledger("users", "create", "--email", "demo@example.com", "--json", env=env))
    key = json.loads(ledger("keys", "create", user["user_id"], "--name", "demo", "--json", env=env))["key"]
    print(f"user {user['user_id']}, key {key[:12]}... (shown once, stored as a hash)")
    ledger("credits", "bonus", user["user_id"], "25", "--reason", "welcome bonus", env=env)
    auth = {"Authorization": f"Bearer {key}"}

    step("a metered call (gpt-4 prices, balanced power level)")
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello, ledger!"}]}
    reply = httpx.post(f"{base}/v1/chat/completions", json=body, headers=auth, timeout=30)
    print(reply.json()["choices"][0]["message"]["content"])
    print(
        f"charged {reply.headers['x-credits-charged']} credits, {reply.headers['x-credits-remaining']} left,"
        f" usage {reply.json()['usage']}"
    )

    step("a streamed call at the precision power level, usage asked for")
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream(
        "POST",
        f"{base}/v1/chat/completions",
        json=stream_body,
        headers={**auth, "X-Power-Level": "precision"},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    print(f"\n(final chunk) usage {chunk['usage']}")
                for choice in chunk["choices"]:
                    print(choice["delta"].get("content") or "", end="", flush=True)

    every_api(base, key)

    step("the user's balance and transactions")
    print(json.dumps(httpx.get(f"{base}/v1/credits/balance", headers=auth).json(), indent=2))
    for txn in httpx.get(f"{base}/v1/credits/transactions", headers=auth).json()["data"]:
        print(
            f"{txn['transaction_type']:>17} {txn['amount']:>12} (allowance {txn['allowance_used']})"
            f" -> balance {txn['balance_after']}  {txn['description']}"
        )

    dashboard(base, key)

    step("an operator asks psql: ledger ops usage_stats_24h")
    print(ledger("ops", "usage_stats_24h", "--var", f"user_id={user['user_id']}", env=env))
    step("and checks the books: ledger ops reconciliation (no rows = every balance adds up)")
    print(ledger("ops", "reconciliation", env=env))


def dashboard(base: str, key: str) -> None:
    """What a browser does at /dashboard: sign in with the key (a session cookie, not the key, is
    kept) and read the account page, whose numbers are the API's."""
    step(f"the user's dashboard: open {base}/dashboard in a browser and sign in with the key")
    with httpx.Client(base_url=base, timeout=30) as browser:
        form = browser.get("/dashboard/sign-in").text
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        assert token is not None
        browser.post("/dashboard/sign-in", data={"csrf": token[1], "key": key}, headers={"Origin": base})
        page = browser.get("/dashboard").text
    shown = re.search(r'<data id="balance" value="([^"]+)"', page)
    reported = httpx.get(f"{base}/v1/credits/balance", headers={"Authorization": f"Bearer {key}"}).json()["balance"]
    print(f"the dashboard shows a balance of {shown[1] if shown else '?'} credits; the API says {reported}")


def every_api(base: str, key: str) -> None:
    """One call per API the gateway meters, each at today's prices for its token types (the demo
    provider reports cached tokens, which are priced at the model's cache price)."""
    openai_auth = {"Authorization": f"Bearer {key}"}
    calls = [
        ("responses", "/v1/responses", openai_auth, {"model": "gpt-5-mini", "input": "Hello, ledger!"}),
        ("embeddings", "/v1/embeddings", openai_auth, {"model": "text-embedding-3-small", "input": "Hello, ledger!"}),
        (
            "completions",
            "/v1/completions",
            openai_auth,
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Hello, ledger!", "max_tokens": 20},
        ),
        (
            "messages",  # Anthropic's API: the key as x-api-key, as Anthropic's SDK sends it
            "/v1/messages",
            {"x-api-key": key, "anthropic-version": "2023-06-01"},
            {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": [{"role": "user", "content": "Hello!"}]},
        ),
    ]
    step("one call per API: OpenAI's responses, embeddings and completions, Anthropic's messages")
    for api, path, headers, body in calls:
        reply = httpx.post(f"{base}{path}", json=body, headers=headers, timeout=30)
        reply.raise_for_status()
        print(f"{api:>11}: charged {reply.headers['x-credits-charged']} credits, usage {reply.json()['usage']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env.update(LEDGER_DATA_DIR=data_dir, LEDGER_PORT=str(port))
        base = f"http://127.0.0.1:{port}"
        step(f"ledger serve on {base}, embedded PostgreSQL in {data_dir}, the demo provider")
        log = Path(data_dir) / "serve.log"
        with open(log, "w") as output:
            process = subprocess.Popen([LEDGER, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
            try:
                wait_ready(base, process)
                demo(base, env)
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
        step("done: the server stopped and its embedded PostgreSQL with it")


if __name__ == "__main__":
    main()

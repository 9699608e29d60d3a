"""Runs `ledger serve` as a real process on a free port, for tests that talk HTTP to it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.fake_upstream import free_port

LEDGER = str(Path(sys.executable).parent / "ledger")


@contextlib.contextmanager
def running_service(env: dict[str, str], *, timeout: float = 60, log: Path | None = None) -> Iterator[str]:
    """Start `ledger serve`, wait until /healthz answers, stop it with SIGINT after the block.
    Its output goes to `log` (else nowhere)."""
    with service_process(env, timeout=timeout, log=log) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def service_process(
    env: dict[str, str], *, timeout: float = 60, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """running_service's process too, for a test that kills it (the block's end then skips the
    SIGINT of a process already gone)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    with open(log or os.devnull, "w") as output:
        process = subprocess.Popen(
            [LEDGER, "serve", "--port", str(port)],
            env={**clean, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError("ledger serve exited early")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError("ledger serve did not answer /healthz in time")
                time.sleep(0.1)
            yield base_url, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise

"""The benchmarks still run, on a tiny load (no figure is judged: timing says nothing in a test).
They drive the service and the ledger's internals, which would otherwise break them unseen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench"


def bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_proxy_overhead_measures_direct_bare_and_metered_and_the_books_reconcile():
    result = bench("proxy_overhead.py", "--requests", "20", "--duration", "0.5")

    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    rows = re.findall(r"^(direct|bare|metered|controlled) +(json|stream) *\|", result.stdout, re.MULTILINE)
    targets = ("direct", "bare", "metered", "controlled")
    assert sorted(rows) == sorted((t, k) for t in targets for k in ("json", "stream"))
    assert re.search(r"controlled / metered requests/s at 64 connections: +\d+\.\d+x .* (PASS|MISS)", result.stdout)
    assert re.search(r"metered / bare requests/s at 64 connections: +\d+\.\d+x .* (PASS|MISS)", result.stdout)
    assert re.search(r"metered p50 - direct p50, one at a time: +-?\d+\.\d+ ms .* (PASS|MISS)", result.stdout)
    books = re.search(
        r"0 holds open, (\d+) usage rows for (\d+) metered requests answered 200, 0 requests failed: reconciled",
        result.stdout,
    )
    assert books and books.group(1) == books.group(2) and int(books.group(1)) > 40


def test_ledger_throughput_measures_one_hot_account_and_64_and_reconciles():
    result = bench("ledger_throughput.py", "--requests", "40")

    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    for spread in ("one hot account", "64 accounts"):
        for way in ("reserve + settle", "one by one", "group commit"):
            assert re.search(rf"^{spread} +{re.escape(way)} *: +\d+ requests/s", result.stdout, re.MULTILINE), way
    assert re.search(r"^group commit: \d+ calls in \d+ statements", result.stdout, re.MULTILINE)
    assert re.search(r"one hot account, group commit / reserve \+ settle: \d+\.\d+x .* (PASS|MISS)", result.stdout)
    assert "reconciliation problems after the run: 0; holds left open: 0" in result.stdout


def test_dashboard_queries_times_both_dashboards_and_every_overview_query():
    result = bench("dashboard_queries.py", "--rows", "2000", "--users", "20", "--views", "1")

    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert re.search(r"^user's account page : +\d+\.\d ms", result.stdout, re.MULTILINE)
    assert re.search(r"^operator's overview : +\d+\.\d ms", result.stdout, re.MULTILINE)
    for name in ("revenue_by_month", "credits_sold_vs_used", "usage_by_day_30d", "reconciliation"):
        assert re.search(rf"^  {name} +\d+\.\d ms", result.stdout, re.MULTILINE), name

"""scripts/demo.py, the product end to end as a newcomer sees it, still works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def test_the_demo_runs_end_to_end():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}

    result = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hello from the demo provider. You said: Hello, ledger!" in out
    assert "charged 0.011700 credits" in out  # 11 + 14 tokens at gpt-4 prices, balanced
    assert "'cost': '0.017550'" in out  # the same at precision, x1.5
    for api in ("responses", "embeddings", "completions", "messages"):
        assert f"{api:>11}: charged 0.0" in out, api
    assert "'cache_read_input_tokens': " in out and "'cached_tokens': " in out
    assert "(0 rows)" in out, "the books reconcile"
    shown = re.search(r"the dashboard shows a balance of (\S+) credits; the API says (\S+)", out)
    assert shown is not None and shown[1] == shown[2], out

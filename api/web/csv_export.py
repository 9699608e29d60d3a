"""Rows as CSV for spreadsheets: exact decimals, UTC times, and no cell a spreadsheet would run.

Model names and error messages come from clients and upstreams: a cell starting with = + - @ (or
a tab or carriage return) is a formula to Excel and LibreOffice, so it is prefixed with a quote
(OWASP's advice on CSV injection). Numbers are written by us and never start with those, a
negative amount aside, which is written as the number it is.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([cell(v) for v in values])
    return buffer.getvalue()


async def csv_pages(
    columns: Sequence[str], read_page: Callable[[int | None], Awaitable[Sequence[Mapping[str, Any]]]]
) -> AsyncIterator[bytes]:
    """The header, then every row of every page read by id cursor (newest first), one page in
    memory at a time."""
    yield _line(columns).encode()
    cursor: int | None = None
    while True:
        rows = await read_page(cursor)
        if not rows:
            return
        yield "".join(_line([row[c] for c in columns]) for row in rows).encode()
        cursor = int(rows[-1]["id"])

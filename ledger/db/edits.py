"""Operators' edits of catalogue rows: an UPDATE's SET list from allow-listed names, and the
constraint errors of an edit as InvalidArgument.

The one exception to where SQL lives (ledger/db/queries.py): an edit changes whichever of its
allow-listed columns the operator named, so its UPDATE is a template beside its one wrapper
(ledger/gateway/prices.py CHANGE_PRICE, ledger/billing/packages.py CHANGE_PACKAGE) whose SET list
is built here, from those names only. tests/db/test_queries.py prepares both with every name.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import asyncpg

from ledger.errors import InvalidArgument


def assignments(changes: dict[str, Any], allowed: set[str], first_param: int) -> tuple[str, list[Any]]:
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidArgument(f"cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(sorted(allowed))}")
    if not changes:
        raise InvalidArgument("nothing to change")
    names = sorted(changes)  # only names from `allowed` reach the SQL text
    sql = ", ".join(f"{name} = ${first_param + i}" for i, name in enumerate(names))
    return sql + ", updated_at = now()", [changes[name] for name in names]


async def checked(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except asyncpg.UniqueViolationError:
        raise InvalidArgument("that name is taken") from None
    except asyncpg.CheckViolationError as exc:
        raise InvalidArgument(f"out of range: {exc.constraint_name}") from None
    except asyncpg.DataError as exc:  # numeric overflow: a price past numeric(12,2), a percentage past 999.99
        raise InvalidArgument(f"out of range: {exc}") from None

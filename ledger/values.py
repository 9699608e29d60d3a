"""Checks on values before they reach SQL: credit amounts and ids.

No float ever becomes money: amounts are Decimal, int, or decimal strings.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ledger.errors import InvalidAmount, InvalidId

CREDIT_PLACES = 6


class Executor(Protocol):
    """An asyncpg pool or connection: what a wrapper needs to call one function."""

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


def to_credits(value: object, *, allow_zero: bool = False) -> Decimal:
    """A credit amount as Decimal: finite, > 0 (or >= 0), at most 6 decimal places."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidAmount(f"amount must be a decimal number or a decimal string, got {type(value).__name__}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidAmount(f"amount must be a number, got {value!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be a finite number, got {value!r}")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"amount must be greater than 0, got {amount}")
    if amount != round(amount, CREDIT_PLACES):
        raise InvalidAmount(f"amount {amount} has more than {CREDIT_PLACES} decimal places")
    return amount


def to_uuid(value: object, what: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidId(f"{what} must be a UUID, got {value!r}") from None

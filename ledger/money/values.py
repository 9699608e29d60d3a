"""Checks on values before they reach SQL: credit amounts and ids.

No float ever becomes money: amounts are Decimal, int, or decimal strings.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation

from ledger.errors import InvalidAmount, InvalidArgument, InvalidId

CREDIT_PLACES = 6
CREDIT_QUANTUM = Decimal(1).scaleb(-CREDIT_PLACES)
# Credit columns are numeric(20,6): 14 digits before the point.
MAX_CREDITS = Decimal("99999999999999.999999")
# The only text an amount may be: ASCII digits, an optional point with digits after it, an optional
# leading minus (refused below where negatives are not allowed). Python's Decimal() alone also reads
# "1e5", "1_000", " 1", "+5" and non-ASCII digits: each would be a different number than it looks.
AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def to_credits(value: object, *, allow_zero: bool = False) -> Decimal:
    """A credit amount as Decimal: finite, > 0 (or >= 0), at most 6 decimal places."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidAmount(f"amount must be a decimal number or a decimal string, got {type(value).__name__}")
    if isinstance(value, str) and not AMOUNT_TEXT.fullmatch(value):
        raise InvalidAmount(f"amount must be a plain decimal like 12.5 (digits, at most one point), got {value!r:.40}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidAmount(f"amount must be a number, got {value!r:.40}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be a finite number, got {value!r:.40}")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"amount must be greater than 0, got {str(amount)[:40]}")
    if amount > MAX_CREDITS:
        raise InvalidAmount(f"amount {str(amount)[:40]} is too large: credit amounts are at most {MAX_CREDITS}")
    if amount != amount.quantize(Decimal(1).scaleb(-CREDIT_PLACES), rounding="ROUND_DOWN"):
        raise InvalidAmount(f"amount {str(amount)[:40]} has more than {CREDIT_PLACES} decimal places")
    return amount


def to_uuid(value: object, what: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidId(f"{what} must be a UUID, got {value!r}") from None


def to_price(value: object, what: str) -> Decimal:
    """A price or percentage an operator typed: a decimal >= 0 with at most 6 places."""
    try:
        return to_credits(value, allow_zero=True)
    except Exception:
        raise InvalidArgument(f"{what} must be a decimal number >= 0 with at most 6 places, got {value!r}") from None

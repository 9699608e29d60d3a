"""The project's SQLSTATEs (class LG, raised by sql/migrations) as exception classes.

Wrappers call the SQL inside `translate_errors()`; the API maps `LedgerError` subclasses to HTTP
statuses by their `http_status`, in one handler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

import asyncpg


class LedgerError(Exception):
    sqlstate: ClassVar[str | None] = None
    http_status: ClassVar[int] = 400
    code: ClassVar[str] = "ledger_error"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint


class InvalidAmount(LedgerError):
    sqlstate = "LG001"
    code = "invalid_amount"


class InvalidTransactionType(LedgerError):
    sqlstate = "LG002"
    code = "invalid_transaction_type"


class UnknownUser(LedgerError):
    sqlstate = "LG003"
    http_status = 404
    code = "unknown_user"


class IdempotencyConflict(LedgerError):
    sqlstate = "LG004"
    http_status = 409
    code = "idempotency_conflict"


class UnknownHold(LedgerError):
    sqlstate = "LG005"
    http_status = 404
    code = "unknown_hold"


class HoldNotOpen(LedgerError):
    sqlstate = "LG006"
    http_status = 409
    code = "hold_not_open"


class LedgerWriteForbidden(LedgerError):
    sqlstate = "LG007"
    http_status = 403
    code = "ledger_write_forbidden"


class MissingReference(LedgerError):
    sqlstate = "LG008"
    code = "missing_reference"


class InvalidArgument(LedgerError):
    sqlstate = "LG009"
    code = "invalid_argument"


class UnknownTier(LedgerError):
    sqlstate = "LG010"
    code = "unknown_tier"


class UnknownPowerLevel(LedgerError):
    sqlstate = "LG011"
    code = "unknown_power_level"


class InvalidBillingCycle(LedgerError):
    """A billing cycle start that is not a finite time or lies more than a day ahead."""

    sqlstate = "LG012"
    code = "invalid_billing_cycle"


class NameTaken(LedgerError):
    """A unique name (a BYOK key's, per user and provider) already in use; raised in Python."""

    http_status = 409
    code = "name_taken"


class InvalidId(LedgerError):
    """A user or hold id that is not a UUID; raised before any SQL runs."""

    code = "invalid_id"


BY_SQLSTATE: dict[str, type[LedgerError]] = {
    cls.sqlstate: cls for cls in LedgerError.__subclasses__() if cls.sqlstate is not None
}


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise a project SQLSTATE as its LedgerError class; anything else passes through."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        cls = BY_SQLSTATE.get(getattr(exc, "sqlstate", None) or "")
        if cls is None:
            raise
        raise cls(
            exc.args[0] if exc.args else str(exc),
            detail=getattr(exc, "detail", None),
            hint=getattr(exc, "hint", None),
        ) from exc

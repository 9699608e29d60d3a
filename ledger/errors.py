"""The project's errors: SQLSTATEs (class LG, raised by sql/migrations) as exception classes, and
the metered engine's refusals (raised in Python).

Wrappers call the SQL inside `translate_errors()`; the API maps every `LedgerError` to an HTTP
response by its `http_status`, `error_type`, `code`, `param` and `headers`, in one handler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import ClassVar

import asyncpg


class LedgerError(Exception):
    sqlstate: ClassVar[str | None] = None
    http_status: ClassVar[int] = 400
    error_type: ClassVar[str] = "invalid_request_error"
    code: str = "ledger_error"
    param: str | None = None

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        hint: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        if code is not None:
            self.code = code
        if param is not None:
            self.param = param
        self.headers = dict(headers or {})


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


class LastOwner(LedgerError):
    """Removing or demoting the last owner of a workspace (sql 0019)."""

    sqlstate = "LG030"
    http_status = 409
    code = "last_owner"


class ProjectNotUsable(LedgerError):
    """A gateway key's project that is archived or belongs to another workspace (sql 0019)."""

    sqlstate = "LG031"
    http_status = 404
    code = "project_not_found"
    param = "project_id"


class WeakPassword(LedgerError):
    """A new password too short, too long or holding NUL (ledger/accounts/passwords.py)."""

    code = "invalid_password"
    param = "password"


class EmailTaken(LedgerError):
    """A sign-up with an email an account has already, whatever its case."""

    http_status = 409
    code = "email_taken"
    param = "email"


class SecondFactorUnavailable(LedgerError):
    """TOTP needs LEDGER_ENCRYPTION_KEY: its secret is stored encrypted, like BYOK keys."""

    http_status = 409
    code = "mfa_unavailable"


class NameTaken(LedgerError):
    """A unique name (a BYOK key's, per user and provider) already in use; raised in Python."""

    http_status = 409
    code = "name_taken"


class InvalidId(LedgerError):
    """A user or hold id that is not a UUID; raised before any SQL runs."""

    code = "invalid_id"


class TooManyKeys(LedgerError):
    """A user asking for a gateway key while holding keys.MAX_USABLE_KEYS usable ones; raised in
    Python, so a stolen key cannot mint thousands of others."""

    http_status = 409
    code = "too_many_keys"


class TooManyProviderKeys(LedgerError):
    """A user adding a BYOK key while holding byok.MAX_ACTIVE_KEYS active ones; raised in Python,
    so a stolen gateway key cannot fill the table with keys."""

    http_status = 409
    code = "too_many_provider_keys"


class AlreadySubscribed(LedgerError):
    """A subscription Checkout for a user who has a subscription in a paid status: a second one
    would be billed every month beside the first. Raised before Stripe is called."""

    http_status = 409
    code = "already_subscribed"


class ExpiryPassed(LedgerError):
    """A new gateway key's expiry that is not in the future; raised in Python."""

    code = "invalid_expiry"
    param = "expires_at"


# The metered engine's refusals: what a caller of a metered API is told, in that API's shape.


class InvalidRequest(LedgerError):
    """A metered request's body that its API does not accept (the code and param say which part)."""

    code = "invalid_request"


class RequestTooComplex(LedgerError):
    http_status = 413
    code = "request_too_complex"


class Unauthenticated(LedgerError):
    http_status = 401
    code = "invalid_api_key"


class InvalidPowerLevel(LedgerError):
    code = "invalid_power_level"
    param = "X-Power-Level"


class ModelNotFound(LedgerError):
    http_status = 404
    code = "model_not_found"
    param = "model"


class InsufficientCredits(LedgerError):
    """The most the request can cost is more than the user can spend: the upstream is never called."""

    http_status = 402
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class BudgetExceeded(LedgerError):
    """A hard budget on the request's path would be exceeded by its hold: nothing was held or sent."""

    http_status = 402
    error_type = "insufficient_quota"
    code = "budget_exceeded"


class RateLimited(LedgerError):
    """A rate limit on the request's path is reached: nothing was held or sent (Retry-After says when)."""

    http_status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class TokensRateLimited(RateLimited):
    """A tokens-per-minute limit is reached (OpenAI's error type "tokens")."""

    error_type = "tokens"


class KeyForbidden(LedgerError):
    """The key's restrictions do not allow the request (its model, providers or client address)."""

    http_status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class TooManyControls(LedgerError):
    """A workspace already has the most budgets (or rate limits) it may: every request checks them."""

    http_status = 409
    code = "too_many_controls"


class InvalidControl(LedgerError):
    """A budget's or rate limit's definition is invalid (the database's check, or the API's)."""

    sqlstate = "LG032"
    code = "invalid_control"


class TooManyTests(LedgerError):
    """Test messages or replays beyond their limit: a target is not anyone's to flood."""

    http_status = 429
    error_type = "rate_limit_error"
    code = "too_many_tests"


class InvalidWebhook(LedgerError):
    """A webhook's definition is invalid: its URL, its target's address, its events or filters."""

    sqlstate = "LG033"
    code = "invalid_webhook"


class ProviderKeyRejected(LedgerError):
    """The provider refused the user's own (BYOK) key: the user's to fix, nothing was charged."""

    code = "provider_key_rejected"


class UpstreamFailed(LedgerError):
    """No provider produced an answer the client could be given; nothing was charged."""

    http_status = 502
    error_type = "upstream_error"
    code = "upstream_unavailable"


class UpstreamTimedOut(UpstreamFailed):
    """The provider received the request and did not answer within its timeout: it may have
    generated the answer (docs/upstream-timeouts.md says what is charged)."""

    http_status = 504
    code = "upstream_timeout"


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

"""What the controls' answer (ledger_check_controls, migration 0021) means for the client: the
rate-limit headers of the tightest limit, in the ecosystem's names, and a refusal as the error
its API's SDKs recognise."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger.errors import BudgetExceeded, KeyForbidden, LedgerError, RateLimited, TokensRateLimited

KEY_REFUSAL_CODES = {"model": "model_not_allowed", "provider": "provider_not_allowed", "ip": "ip_not_allowed"}


def go_duration(seconds: float) -> str:
    """A duration as OpenAI's x-ratelimit-reset-* headers spell it: 20ms, 1s, 6m0s, 1h2m3.5s."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours >= 1:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes >= 1:
        return f"{int(minutes)}m{text}"
    return text


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _until(value: str, now: datetime) -> float:
    return max((_instant(value) - now).total_seconds(), 0.0)


def _rfc3339(value: str) -> str:
    return _instant(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def remaining_of(limit: dict[str, Any]) -> int:
    """What a limit of the controls' answer has left, as a whole number, never below 0."""
    return max(int(Decimal(str(limit["remaining"]))), 0)


def limit_headers(controls: dict[str, Any] | None, provider_api: str, now: datetime | None = None) -> dict[str, str]:
    """The headers of the tightest request and token limits over the request (none when no limit
    applies): x-ratelimit-{limit,remaining,reset}-{requests,tokens} on OpenAI's paths,
    anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset} on Anthropic's; and
    x-budget-exceeded naming the soft budgets this request took past their amount."""
    if not controls:
        return {}
    now = now or datetime.now(UTC)
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        limit = controls.get(kind)
        if not limit:
            continue
        remaining = str(remaining_of(limit))
        if provider_api == "anthropic":
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit["limit"])
            headers[f"anthropic-ratelimit-{kind}-remaining"] = remaining
            headers[f"anthropic-ratelimit-{kind}-reset"] = _rfc3339(limit["reset_at"])
        else:
            headers[f"x-ratelimit-limit-{kind}"] = str(limit["limit"])
            headers[f"x-ratelimit-remaining-{kind}"] = remaining
            headers[f"x-ratelimit-reset-{kind}"] = go_duration(_until(limit["reset_at"], now))
    if soft := controls.get("soft"):
        headers["x-budget-exceeded"] = ",".join(str(budget) for budget in soft)
    return headers


def refusal_error(hold_state: str, controls: dict[str, Any], headers: dict[str, str]) -> LedgerError:
    """The error of a request a control refused (hold_state budget, rate_limit or forbidden)."""
    refusal = controls["refusal"]
    message = str(refusal["message"])
    if hold_state == "forbidden":
        return KeyForbidden(message, code=KEY_REFUSAL_CODES.get(str(refusal.get("what")), "not_allowed"))
    if hold_state == "budget":
        return BudgetExceeded(message, headers={**headers, "x-should-retry": "false"})
    retry_after = refusal.get("retry_after")
    kind = TokensRateLimited if refusal.get("type") == "tokens" else RateLimited
    error = kind(message, headers=headers)
    if retry_after is None:  # the request is larger than the limit: waiting cannot help
        error.headers["x-should-retry"] = "false"
    else:
        wait = float(retry_after)
        error.headers["retry-after"] = str(max(math.ceil(wait), 1))
        error.headers["retry-after-ms"] = str(max(math.ceil(wait * 1000), 1))
    return error

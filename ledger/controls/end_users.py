"""The customer's own end user, as a metered request names it: budgets and rate limits on an end
user match it, and its usage row keeps it."""

from __future__ import annotations

from typing import Any

from ledger.errors import InvalidRequest

# Longer ids are refused, not cut: two ids sharing their first characters would share a budget.
MOST_END_USER_CHARACTERS = 256


def end_user_of(body: dict[str, Any], provider_api: str) -> str | None:
    """OpenAI's `safety_identifier` (else its older `user`), Anthropic's `metadata.user_id`; None
    when the request names none. A value that is not a string is the adapter's or the provider's
    to refuse; here it names no end user."""
    if provider_api == "anthropic":
        metadata = body.get("metadata")
        found = metadata.get("user_id") if isinstance(metadata, dict) else None
        param = "metadata.user_id"
    else:
        found = body.get("safety_identifier")
        param = "safety_identifier"
        if not isinstance(found, str) or not found:
            found, param = body.get("user"), "user"
    if not isinstance(found, str) or not found:
        return None
    if len(found) > MOST_END_USER_CHARACTERS:
        raise InvalidRequest(
            f"'{param}' names your end user in at most {MOST_END_USER_CHARACTERS} characters.",
            param=param,
            code="invalid_end_user",
        )
    return found

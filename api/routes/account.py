"""A key owner's own account: balance, transactions, usage. Nobody sees another user's data:
every query is bound to the authenticated key's user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.jsonresponse import LedgerJSONResponse
from api.params import page, query_datetime, query_int, query_text
from ledger.billing.events import PAID_STATUSES
from ledger.money.accounts import get_account

MAX_PAGE = 500


# The subscription that gives the user their tier (one in a paid status on it), else the latest.
SUBSCRIPTION = f"""
SELECT s.subscription_id AS id, s.tier, s.status, s.current_period_start, s.current_period_end
  FROM stripe_subscriptions s JOIN user_credits u USING (user_id)
 WHERE s.user_id = $1
 ORDER BY (s.tier = u.tier AND s.status IN {PAID_STATUSES!r}) DESC, s.updated_at DESC
 LIMIT 1
"""  # noqa: S608 - constants


async def balance(request: Request) -> Response:
    owner = await gateway_owner(request)
    account = await get_account(request.app.state.pool, owner.user_id)
    subscription = await request.app.state.pool.fetchrow(SUBSCRIPTION, owner.user_id)
    shown = {key: value for key, value in account.items() if key != "email"}
    subscription_shown = None if subscription is None else dict(subscription)
    return LedgerJSONResponse({"object": "credit_balance", **shown, "subscription": subscription_shown})


TRANSACTIONS = """
SELECT id, transaction_type, amount, balance_after, allowance_used, description, reference_id, created_at
  FROM credit_transactions
 WHERE user_id = $1
   AND ($2::timestamptz IS NULL OR created_at >= $2)
   AND ($3::timestamptz IS NULL OR created_at < $3)
   AND ($4::text IS NULL OR transaction_type = $4)
   AND ($5::bigint IS NULL OR id < $5)
 ORDER BY id DESC
 LIMIT $6
"""


async def transactions(request: Request) -> Response:
    return await _own_rows(request, TRANSACTIONS, filter_param="type")


USAGE = """
SELECT id, request_id, model, provider, power_level, prompt_tokens, completion_tokens, total_tokens, cost_usd,
       cost_multiplier, credits_used, latency_ms, success, status_code, error_message, is_byok, created_at
  FROM llm_usage_log
 WHERE user_id = $1
   AND ($2::timestamptz IS NULL OR created_at >= $2)
   AND ($3::timestamptz IS NULL OR created_at < $3)
   AND ($4::text IS NULL OR model = $4)
   AND ($5::bigint IS NULL OR id < $5)
 ORDER BY id DESC
 LIMIT $6
"""


async def usage(request: Request) -> Response:
    return await _own_rows(request, USAGE, filter_param="model")


async def _own_rows(request: Request, query: str, *, filter_param: str) -> Response:
    """A page of the caller's rows: newest first, from/to dates, one filter, an id cursor."""
    owner = await gateway_owner(request)
    limit = query_int(request, "limit", 50, low=1, high=MAX_PAGE)
    rows = await request.app.state.pool.fetch(
        query,
        owner.user_id,
        query_datetime(request, "from"),
        query_datetime(request, "to"),
        query_text(request, filter_param),
        _cursor(request),
        limit + 1,
    )
    return LedgerJSONResponse(page(rows, limit))


def _cursor(request: Request) -> int | None:
    if request.query_params.get("after") is None:
        return None
    return query_int(request, "after", 0, low=1, high=2**63 - 1)

"""A key owner's own account: balance, transactions, usage. Nobody sees another user's data:
every query is bound to the authenticated key's user."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth import gateway_owner
from api.jsonresponse import LedgerJSONResponse
from api.params import page, query_datetime, query_int, query_text
from api.services import services
from ledger.billing.subscriptions import current_subscription
from ledger.money.accounts import get_account
from ledger.money.history import transactions_page, usage_page

MAX_PAGE = 500

# ledger.money.history's page readers: (db, user, from, to, filter, id cursor, limit) -> rows
PageReader = Callable[
    [Any, uuid.UUID, datetime | None, datetime | None, str | None, int | None, int],
    Awaitable[list[Any]],
]


async def balance(request: Request) -> Response:
    owner = await gateway_owner(request)
    account = await get_account(services(request).pool, owner.user_id)
    subscription = await current_subscription(services(request).pool, owner.user_id)
    shown = {key: value for key, value in account.items() if key != "email"}
    return LedgerJSONResponse({"object": "credit_balance", **shown, "subscription": subscription})


async def transactions(request: Request) -> Response:
    return await _own_rows(request, transactions_page, filter_param="type")


async def usage(request: Request) -> Response:
    return await _own_rows(request, usage_page, filter_param="model")


async def _own_rows(request: Request, read: PageReader, *, filter_param: str) -> Response:
    """A page of the caller's rows: newest first, from/to dates, one filter, an id cursor."""
    owner = await gateway_owner(request)
    limit = query_int(request, "limit", 50, low=1, high=MAX_PAGE)
    rows = await read(
        services(request).pool,
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

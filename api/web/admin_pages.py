"""/admin/dashboard: the operator's view of revenue, spend and the ledger's health, and a user's page
with the admin actions the CLI has.

Every figure on the overview is a row of an ops query (scripts/ops/<name>.sql, the file psql runs,
through ledger.ops.fetch_ops); a user's page reads the same ledger functions as GET /admin/users/{id}
and the admin API's actions. Nothing here holds SQL of its own or recomputes a figure.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth import operator_db
from api.routes.admin import UserChange
from api.services import services
from api.web import charts
from api.web.pages import (
    ADMIN_AREA,
    PageError,
    SignInRequired,
    checked_form,
    end_session,
    form_model,
    page,
    page_of_rows,
    redirect,
    render,
    session_of,
    sign_in_fields,
    sign_in_form,
    signer,
    start_session,
)
from api.web.sessions import Session
from ledger.billing.subscriptions import tiers_on_sale
from ledger.gateway import dashboard_sessions
from ledger.gateway import keys as gateway_keys
from ledger.money import accounts, credits
from ledger.money.history import transactions_page, usage_page
from ledger.ops import fetch_ops

ROOT = ADMIN_AREA.root
# Rows of each table on a user's page
RECENT_ROWS = 10
# Days of the usage chart (usage_by_day_30d) and months of the revenue chart (revenue_by_month)
CHART_DAYS = 30
CHART_MONTHS = 12

# The ops queries the overview shows, each once per view
OVERVIEW_QUERIES = (
    "revenue_by_package",
    "revenue_by_month",
    "credits_sold_vs_used",
    "spend_by_model_30d",
    "spend_by_provider",
    "spend_by_power_level",
    "usage_by_day_30d",
    "top_users_30d",
    "low_balance_users",
    "failed_requests",
    "stripe_events",
    "stripe_payments_review",
    "holds",
    "reconciliation",
)

# What a redirect after a form tells the operator (by a fixed word: never text from the URL)
NOTICES = {
    "bonus": "Bonus granted.",
    "admin_adjustment": "Adjustment made.",
    "tier": "Tier changed.",
    "power_level": "Power level changed.",
    "key_revoked": "Key revoked.",
}

# A grant's amount as the form must give it: a plain decimal, signed for an adjustment (no
# exponent, no inf or nan, no thousands separators)
AMOUNT_TEXT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")
# The reference a user page puts in its grant form, so a form sent twice grants once
GRANT_REFERENCE = re.compile(r"dashboard-[0-9a-f]{32}")
MAX_REASON_CHARS = 1000
# The fewest characters of a key a search takes: "sk-lg-" and two of its own (1 in 4096 keys)
MIN_KEY_SEARCH = len(gateway_keys.KEY_PREFIX) + 2


def _admin_token(request: Request) -> str:
    configured = services(request).settings.admin_token
    if configured is None:
        raise PageError(404, "The operator's dashboard is off: set LEDGER_ADMIN_TOKEN to turn it on.")
    return configured.get_secret_value()


async def signed_in(request: Request) -> Session:
    """The admin session, while the token it was made with is still the admin token."""
    current = signer(request).fingerprint(_admin_token(request))
    session = session_of(request, ADMIN_AREA)
    if session is None or not hmac.compare_digest(session.subject.encode(), current.encode()):
        raise SignInRequired
    if await dashboard_sessions.session_ended(services(request).pool, session.nonce):
        raise SignInRequired
    return session


@page(ADMIN_AREA)
async def sign_in_page(request: Request) -> Response:
    _admin_token(request)
    return sign_in_form(request, ADMIN_AREA, "admin/sign_in.html", {})


@page(ADMIN_AREA)
async def sign_in(request: Request) -> Response:
    token = _admin_token(request)
    fields = await sign_in_fields(request, ADMIN_AREA)
    given = fields.get("token", "").strip()
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        message = "That is not the admin token (LEDGER_ADMIN_TOKEN of this service)."
        return sign_in_form(request, ADMIN_AREA, "admin/sign_in.html", {"error": message}, 401)
    return start_session(request, ADMIN_AREA, signer(request).fingerprint(token), None, ROOT)


@page(ADMIN_AREA)
async def sign_out(request: Request) -> Response:
    return await end_session(request, ADMIN_AREA)


@page(ADMIN_AREA)
async def overview(request: Request) -> Response:
    session = await signed_in(request)
    ops: dict[str, list[Any]] = {}
    # One connection, one snapshot: the figures of one view are of the same moment
    async with services(request).pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        for name in OVERVIEW_QUERIES:
            ops[name] = [dict(row) for row in await fetch_ops(conn, name)]
    today = datetime.now(UTC).date()
    context = {
        "ops": ops,
        "revenue_charts": {
            currency: charts.by_month(rows, today, CHART_MONTHS, key="package", value="net_amount")
            for currency, rows in _by_currency(ops["revenue_by_month"]).items()
        },
        "usage_chart": charts.by_day(
            ops["usage_by_day_30d"], today - timedelta(days=CHART_DAYS - 1), today, key="model", value="credits"
        ),
        "model_chart": charts.by_label(
            ops["spend_by_model_30d"], label="model", value="credits_30d", name="Credits, 30 days"
        ),
        "provider_chart": charts.by_label(
            [{**row, "provider": _provider_label(row)} for row in ops["spend_by_provider"]],
            label="provider",
            value="credits_30d",
            name="Credits, 30 days",
        ),
        "power_level_chart": charts.by_label(
            ops["spend_by_power_level"], label="power_level", value="credits_30d", name="Credits, 30 days"
        ),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "admin/overview.html", context, session=session)


def _by_currency(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """A chart per currency: amounts in two currencies never add up."""
    split: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        split.setdefault(str(row["currency"]), []).append(row)
    return split


def _provider_label(row: Mapping[str, Any]) -> str:
    return f"{row['provider']} (BYOK)" if row["is_byok"] else str(row["provider"])


@page(ADMIN_AREA)
async def find_user(request: Request) -> Response:
    """A user by id, or the owner(s) of the keys that start with the given text. A form posted
    rather than a query string: a whole key pasted here must not end up in a URL or an access log."""
    session = await signed_in(request)
    wanted = (await checked_form(request, session)).get("q", "").strip()
    try:
        return redirect(f"{ROOT}/users/{uuid.UUID(wanted)}")
    except ValueError:
        pass
    if len(wanted) < MIN_KEY_SEARCH:
        raise PageError(400, f"Give a user id, or at least the first {MIN_KEY_SEARCH} characters of one of their keys.")
    keys = await gateway_keys.list_keys(services(request).pool, prefix=wanted[: gateway_keys.VISIBLE_CHARS])
    owners = sorted({str(key["user_id"]) for key in keys})
    if len(owners) == 1:
        return redirect(f"{ROOT}/users/{owners[0]}")
    shown = wanted[: gateway_keys.VISIBLE_CHARS]  # never more of a key than its prefix
    return render(request, "admin/found.html", {"wanted": shown, "keys": keys}, session=session)


def _user_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise PageError(404, "No such user: a user id is a UUID.") from None


@page(ADMIN_AREA)
async def user_page(request: Request) -> Response:
    session = await signed_in(request)
    user_id = _user_id(request)
    pool = services(request).pool
    account = await accounts.get_account(pool, user_id)  # an unknown user: the ledger's 404
    context = {
        "account": account,
        "keys": await gateway_keys.list_keys(pool, user_id=user_id),
        "usage": await usage_page(pool, user_id, None, None, None, None, RECENT_ROWS),
        "transactions": await transactions_page(pool, user_id, None, None, None, None, RECENT_ROWS),
        "power_levels": await accounts.power_levels_on_offer(pool),
        "tiers": await tiers_on_sale(pool),
        "grant_reference": f"dashboard-{uuid.uuid4().hex}",
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "admin/user.html", context, session=session)


@page(ADMIN_AREA)
async def user_usage(request: Request) -> Response:
    session = await signed_in(request)
    user_id = _user_id(request)
    pool = services(request).pool
    await accounts.get_account(pool, user_id)
    context = {"user_id": user_id, **await page_of_rows(request, usage_page, user_id)}
    return render(request, "admin/user_usage.html", context, session=session)


@page(ADMIN_AREA)
async def user_transactions(request: Request) -> Response:
    session = await signed_in(request)
    user_id = _user_id(request)
    pool = services(request).pool
    await accounts.get_account(pool, user_id)
    context = {"user_id": user_id, **await page_of_rows(request, transactions_page, user_id)}
    return render(request, "admin/user_transactions.html", context, session=session)


def grant_amount(text: str, kind: str) -> Decimal:
    """The amount of a grant form: a plain decimal (an adjustment may be negative), never a float's
    notation, an infinity or text the ledger would have to guess at."""
    if not AMOUNT_TEXT.fullmatch(text):
        raise PageError(400, f"The amount must be a plain decimal like 12.5, not {text[:40]!r}.")
    amount = Decimal(text)
    if amount == 0 or (amount < 0 and kind != "admin_adjustment"):
        raise PageError(400, "A bonus adds credits: its amount must be above 0 (an adjustment may be negative).")
    return amount


def _grant_terms(fields: dict[str, str]) -> tuple[datetime | None, int | None]:
    """A grant's optional expiry (a datetime-local field, read as UTC) and priority."""
    text, level = fields.get("expires_at", "").strip(), fields.get("priority", "").strip()
    try:
        expires = None if not text else datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise PageError(400, "The expiry must be a date and time, such as 2027-04-01T00:00.") from None
    if level and (not (level.isascii() and level.isdigit()) or int(level) > 100):
        raise PageError(400, "The priority is a whole number from 0 (spent first) to 100.")
    return expires, int(level) if level else None


@page(ADMIN_AREA)
async def grant(request: Request) -> Response:
    """A bonus or an adjustment with its reason, as POST /admin/users/{id}/credits makes it."""
    session = await signed_in(request)
    user_id = _user_id(request)
    fields = await checked_form(request, session)
    kind = fields.get("transaction_type", "")
    if kind not in ("bonus", "admin_adjustment"):
        raise PageError(400, "Choose a bonus or an adjustment.")
    amount = grant_amount(fields.get("amount", "").strip(), kind)
    reason = fields.get("reason", "").strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise PageError(400, f"Say why (a reason of 1 to {MAX_REASON_CHARS} characters): it is kept with the grant.")
    reference = fields.get("reference", "")
    if not GRANT_REFERENCE.fullmatch(reference):
        raise PageError(400, "This form is not one of the dashboard's; reload the user's page and try again.")
    expires_at, priority = _grant_terms(fields)
    pool = services(request).pool
    await accounts.get_account(pool, user_id)
    async with operator_db(request) as conn:
        result = await credits.adjust_credits(
            conn, user_id, amount, kind, reference, reason, expires_at=expires_at, priority=priority
        )
    if not result.success:
        raise PageError(409, f"The balance ({result.new_balance}) cannot cover removing {-amount} credits.")
    return redirect(f"{ROOT}/users/{user_id}", notice=kind)


@page(ADMIN_AREA)
async def change_tier(request: Request) -> Response:
    session = await signed_in(request)
    user_id = _user_id(request)
    fields = await checked_form(request, session)
    tier = fields.get("tier", "").strip()
    if not tier or len(tier) > 64:
        raise PageError(400, "Give the tier's name.")
    pool = services(request).pool
    await accounts.get_account(pool, user_id)
    async with operator_db(request) as conn:
        await accounts.set_user_tier(conn, user_id, tier)
    return redirect(f"{ROOT}/users/{user_id}", notice="tier")


@page(ADMIN_AREA)
async def change_power_level(request: Request) -> Response:
    session = await signed_in(request)
    user_id = _user_id(request)
    fields = await checked_form(request, session)
    # the admin API's model bounds the text; the ledger refuses a level that is not active
    change = form_model(UserChange, {"power_level": fields.get("power_level", "")})
    pool = services(request).pool
    await accounts.get_account(pool, user_id)
    async with operator_db(request) as conn:
        await accounts.set_power_level(conn, user_id, str(change.power_level))
    return redirect(f"{ROOT}/users/{user_id}", notice="power_level")


@page(ADMIN_AREA)
async def revoke_key(request: Request) -> Response:
    """Revoke one of this user's keys: a key of another user is not found here."""
    session = await signed_in(request)
    user_id = _user_id(request)
    await checked_form(request, session)
    try:
        key_id = uuid.UUID(request.path_params["key_id"])
    except ValueError:
        raise PageError(404, "No such key.") from None
    async with operator_db(request) as conn:
        revoked = await gateway_keys.revoke_own_key(conn, user_id, key_id)
    if not revoked:
        raise PageError(404, "This user has no such active key.")
    return redirect(f"{ROOT}/users/{user_id}", notice="key_revoked")

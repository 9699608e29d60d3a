"""/dashboard: a key owner's account, usage, purchases and keys, in the browser.

Every figure comes from the same ledger functions as the JSON API's answer to the same question
(GET /v1/credits/balance, /v1/usage, /v1/usage/daily, /v1/credits/transactions, /v1/keys), so a
page and the API never disagree. Forms change things through those same functions too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.routes.account import AccountChange
from api.routes.purchases import changed_tier, started_checkout, stripe_of
from api.services import services
from api.web import charts, person_pages
from api.web.csv_export import csv_pages
from api.web.pages import (
    SECURITY_HEADERS,
    USER_AREA,
    PageError,
    checked_form,
    end_session,
    form_model,
    page,
    page_of_rows,
    redirect,
    render,
    sign_in_fields,
    sign_in_form,
    start_session,
)
from api.web.sessions import Session
from api.web.viewer import Viewer, viewer_of
from ledger.accounts import projects
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.billing import checkout as stripe_checkout
from ledger.billing import tier_change
from ledger.billing.events import PAID_STATUSES
from ledger.billing.packages import packages_on_sale
from ledger.billing.subscriptions import OwnerAccount, owner_account, tiers_on_sale
from ledger.gateway import keys as gateway_keys
from ledger.money import accounts, grants
from ledger.money.history import transactions_page, usage_by_day, usage_page

ROOT = USER_AREA.root
# Days the overview's chart covers, today included
CHART_DAYS = 30
# Rows of each table on the overview
RECENT_ROWS = 10


async def signed_in(request: Request, permission: Permission = Permission.SEE_USAGE) -> tuple[Session, Viewer]:
    """The session and who it is, when their role in the workspace allows `permission`."""
    session, viewer = await viewer_of(request)
    request.state.viewer = viewer  # for the pages' navigation and forms (pages.render)
    viewer.require(permission)
    return session, viewer


@page(USER_AREA)
async def sign_in_page(request: Request) -> Response:
    return sign_in_form(request, USER_AREA, "user/sign_in.html", sign_in_context(request))


SIGN_IN_NOTICES = {"password_reset": "Your password is changed: sign in with it."}


def sign_in_context(request: Request, error: str | None = None) -> dict[str, Any]:
    return {
        "error": error,
        "key_sign_in": services(request).settings.dashboard_key_sign_in,
        "notice": SIGN_IN_NOTICES.get(request.query_params.get("notice", "")),
    }


@page(USER_AREA)
async def sign_in(request: Request) -> Response:
    fields = await sign_in_fields(request, USER_AREA)
    if "email" in fields:
        return await person_pages.sign_in_person(request, fields)
    if not services(request).settings.dashboard_key_sign_in:
        raise PageError(403, "Signing in with a gateway key is turned off here: sign in with your email.")
    key = fields.get("key", "").strip()
    owner = await gateway_keys.authenticate(services(request).pool, key) if key else None
    if owner is None or not owner.personal:
        message = "That key is wrong, revoked or expired. Ask your operator for a new one if you have none."
        if owner is not None:
            message = "That key belongs to a team workspace: its members sign in with their email."
        return sign_in_form(request, USER_AREA, "user/sign_in.html", sign_in_context(request, message), 401)
    return start_session(request, USER_AREA, str(owner.key_id), str(owner.user_id), ROOT)


@page(USER_AREA)
async def sign_out(request: Request) -> Response:
    response = await end_session(request, USER_AREA)  # checks the form's CSRF token first
    await person_pages.end_person_session(request)
    return response


@page(USER_AREA)
async def overview(request: Request) -> Response:
    session, owner = await signed_in(request)
    pool = services(request).pool
    # the same readers as GET /v1/credits/balance, /v1/usage, /v1/credits/transactions, /v1/usage/daily
    account = await owner_account(pool, owner.user_id)
    usage = await usage_page(pool, owner.user_id, None, None, None, None, RECENT_ROWS)
    transactions = await transactions_page(pool, owner.user_id, None, None, None, None, RECENT_ROWS)
    # the chart's bars by model, or by project (?chart=project)
    by = "project" if request.query_params.get("chart") == "project" else "model"
    days = await usage_by_day(pool, owner.user_id, CHART_DAYS, by)
    daily = charts.by_day(days.rows, days.first_day, days.last_day, key=by, value="credits")
    context = {
        "account": account,
        "subscription": account["subscription"],
        "power_levels": await accounts.power_levels_on_offer(pool),
        "packages": await packages_on_sale(pool),
        "tiers": await tiers_on_sale(pool),
        "paid_statuses": PAID_STATUSES,
        "purchases_on": services(request).stripe is not None,
        "usage": usage,
        "transactions": transactions,
        "daily": daily,
        "chart_by": by,
        "low_balance": _running_low(account),
        "lots": await grants.lots_of(pool, owner.user_id),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "user/overview.html", context, session=session)


# The seed's "low balance" line (scripts/ops/low_balance_users.sql): under 10 credits
LOW_BALANCE_CREDITS = 10


def _running_low(account: OwnerAccount) -> bool:
    """Whether requests may soon be refused: what is left to spend (the allowance left, then the
    purchased balance) is under the seed's line. An unlimited allowance never runs low."""
    left = account["allowance_remaining"]
    return left is not None and left + account["balance"] < LOW_BALANCE_CREDITS


# What a redirect after a form tells the person (by a fixed word: never text from the URL)
NOTICES = {
    "power_level": "Power level changed.",
    "signed_up": "Welcome. We sent you a link to confirm your email address.",
    "email_verified": "Your email address is confirmed.",
    "joined": "You joined the workspace.",
    "switched": "Workspace changed.",
    "checkout_done": "Thank you. Your payment is being confirmed; the credits appear here once Stripe tells us.",
    "checkout_cancelled": "The checkout was cancelled; nothing was charged.",
    "tier_change": "Your subscription is being changed; the new tier shows here once Stripe confirms it.",
}


@page(USER_AREA)
async def change_power_level(request: Request) -> Response:
    session, owner = await signed_in(request, Permission.CHANGE_POWER_LEVEL)
    fields = await checked_form(request, session)
    # the API's model bounds the text; the ledger refuses a level that is not active, naming those that are
    change = form_model(AccountChange, {"power_level": fields.get("power_level", "")})
    async with acting(services(request).pool, owner.actor(request)) as conn:
        await accounts.set_power_level(conn, owner.user_id, change.power_level)
    return redirect(ROOT, notice="power_level")


def _return_urls(request: Request) -> tuple[str, str]:
    """Where Stripe sends the person back: a page that needs no cookie (a SameSite=Strict cookie
    is not sent on a navigation that starts at Stripe), which then moves to the dashboard. Under
    LEDGER_PUBLIC_URL when set, else the address the request came to."""
    public = services(request).settings.public_url or str(request.base_url).rstrip("/")
    base = public + ROOT + "/return"
    return base + "?checkout=done", base + "?checkout=cancelled"


@page(USER_AREA)
async def buy(request: Request) -> Response:
    session, owner = await signed_in(request, Permission.BUY_CREDITS)
    fields = await checked_form(request, session)
    success, cancel = _return_urls(request)
    started = await started_checkout(
        stripe_checkout.credit_checkout(
            services(request).pool, stripe_of(request), owner.user_id, fields.get("package_id", ""), success, cancel
        )
    )
    return redirect(started["url"])


@page(USER_AREA)
async def subscribe(request: Request) -> Response:
    session, owner = await signed_in(request, Permission.SUBSCRIBE)
    fields = await checked_form(request, session)
    success, cancel = _return_urls(request)
    started = await started_checkout(
        stripe_checkout.subscription_checkout(
            services(request).pool, stripe_of(request), owner.user_id, fields.get("tier", ""), success, cancel
        )
    )
    return redirect(started["url"])


@page(USER_AREA)
async def change_tier(request: Request) -> Response:
    """A paid subscription moved to another tier in Stripe: the tier shown changes once Stripe's
    webhook says so (as with purchases, the webhook is the one source of truth)."""
    session, owner = await signed_in(request, Permission.SUBSCRIBE)
    fields = await checked_form(request, session)
    tier = fields.get("tier", "")
    await changed_tier(tier_change.change_tier(services(request).pool, stripe_of(request), owner.user_id, tier))
    return redirect(ROOT, notice="tier_change")


async def checkout_return(request: Request) -> Response:
    """Stripe's return: a same-site step to the dashboard (see _return_urls)."""
    notice = "checkout_done" if request.query_params.get("checkout") == "done" else "checkout_cancelled"
    return render(request, "user/return.html", {"target": f"{ROOT}?notice={notice}"})


@page(USER_AREA)
async def usage_table(request: Request) -> Response:
    """Every request, newest first; ?project=ID: that project's only."""
    session, owner = await signed_in(request)
    pool = services(request).pool
    workspace_projects = await projects.projects_of(pool, owner.user_id, archived=True, limit=1000)
    chosen = _chosen_project(request, workspace_projects)

    async def read(db: Any, user_id: Any, since: Any, until: Any, model: Any, cursor: Any, limit: int) -> Any:
        return await usage_page(db, user_id, since, until, model, cursor, limit, chosen)

    context = {
        **await page_of_rows(request, read, owner.user_id),
        "projects": workspace_projects,
        "project": chosen,
        "project_names": {p["id"]: p["name"] for p in workspace_projects},
    }
    return render(request, "user/usage.html", context, session=session)


def _chosen_project(request: Request, workspace_projects: Sequence[projects.Project]) -> Any:
    wanted = request.query_params.get("project")
    if not wanted:
        return None
    for project in workspace_projects:
        if str(project["id"]) == wanted:
            return project["id"]
    raise PageError(404, "No such project in this workspace.")


@page(USER_AREA)
async def transactions_table(request: Request) -> Response:
    session, owner = await signed_in(request)
    context = await page_of_rows(request, transactions_page, owner.user_id)
    return render(request, "user/transactions.html", context, session=session)


# The export's columns: every column of the usage table the API's /v1/usage answers with
USAGE_CSV_COLUMNS = (
    "created_at",
    "request_id",
    "api",
    "model",
    "provider",
    "power_level",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "cache_audio_read_tokens",
    "input_image_tokens",
    "cache_image_read_tokens",
    "reasoning_tokens",
    "output_audio_tokens",
    "output_image_tokens",
    "cost_multiplier",
    "credits_used",
    "latency_ms",
    "success",
    "status_code",
    "error_message",
    "is_byok",
)
# Rows read per query while exporting
CSV_PAGE_ROWS = 500


@page(USER_AREA)
async def usage_csv(request: Request) -> Response:
    """Every request of the user, newest first, streamed a page at a time."""
    _, owner = await signed_in(request)
    pool = services(request).pool

    async def read(cursor: int | None) -> Sequence[Mapping[str, Any]]:
        return await usage_page(pool, owner.user_id, None, None, None, cursor, CSV_PAGE_ROWS)

    return StreamingResponse(
        csv_pages(USAGE_CSV_COLUMNS, read),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "content-disposition": 'attachment; filename="usage.csv"'},
    )

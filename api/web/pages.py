"""What every dashboard page shares: rendering (Jinja2, autoescaped), the session cookie, forms with
their CSRF check, and errors as HTML pages rather than the API's JSON.

Pages are read with and without JavaScript: the numbers are in the HTML; scripts only draw charts.
"""

from __future__ import annotations

import datetime
import functools
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from api.errors import ApiError, http_error, known_failure
from api.routes.account import PageReader
from api.services import services
from api.web.sessions import Kind, Session, SessionSigner
from ledger.errors import LedgerError
from ledger.gateway import dashboard_sessions

M = TypeVar("M", bound=BaseModel)

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_DIR = HERE / "static"

# The browser may run our own scripts and styles only: no inline script, nothing from elsewhere.
# No form-action: a purchase form is answered with a redirect to Stripe's checkout page.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

# The most fields a dashboard form has, with room to spare; more is not one of our forms
MAX_FORM_FIELDS = 20


@dataclass(frozen=True, slots=True)
class Area:
    """One dashboard: where it lives and the cookies it uses (each scoped to its own path)."""

    kind: Kind
    root: str
    session_cookie: str
    sign_in_cookie: str


USER_AREA = Area("user", "/dashboard", "ledger_session", "ledger_sign_in")
ADMIN_AREA = Area("admin", "/admin/dashboard", "ledger_admin_session", "ledger_admin_sign_in")


class PageError(Exception):
    """Told to the person as an HTML page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No session, or one that ended (expired, its key revoked): the sign-in page, then back."""


class SecondFactorDue(Exception):
    """Signed in with a password; the TOTP code is still to come: the second step's page."""


class NoWorkspace(Exception):
    """A person who is a member of no workspace (all removed): the page to make or join one."""


def signer(request: Request) -> SessionSigner:
    return services(request).signer


# ---- rendering ---------------------------------------------------------------------------------


def credits(value: object) -> str:
    """An amount as people read it: grouped thousands, every digit the database holds (never
    rounded: a provider cost has more decimals than a credit), no trailing zeros."""
    if value is None:
        return "-"
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    text = f"{amount:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(cents: object, currency: object = "usd") -> str:
    """Stripe's minor units as an amount: 4500, usd -> 45.00 USD."""
    if cents is None:
        return "-"
    return f"{Decimal(int(str(cents))) / 100:,.2f} {str(currency).upper()}"


def when(value: object) -> str:
    if not isinstance(value, datetime.datetime):
        return "-" if value is None else str(value)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.env.filters.update(credits=credits, money=money, when=when)


def render(
    request: Request, template: str, context: Mapping[str, Any], status: int = 200, session: Session | None = None
) -> Response:
    values = dict(context)
    values.setdefault("viewer", getattr(request.state, "viewer", None))
    if session is not None:
        values["csrf"] = signer(request).csrf_token(session.nonce)
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(location: str, *, notice: str | None = None) -> Response:
    """After a form: 303, so a reload does not post it again."""
    if notice:
        location += ("&" if "?" in location else "?") + "notice=" + notice
    response = RedirectResponse(location, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


# What a page says of a failure that is not a bug (api.errors.known_failure), by its status
PAGE_FAILURES = {
    400: "A value in this form is beyond what the ledger can store (too large, too many digits); nothing was changed.",
    503: "The ledger's database cannot be reached right now; nothing was changed. Try again in a moment.",
}


def error_page(request: Request, area: Area, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message, "area": area}, status)


def area_of(path: str) -> Area | None:
    for area in (USER_AREA, ADMIN_AREA):
        if path == area.root or path.startswith(area.root + "/"):
            return area
    return None


async def http_error_page(request: Request, exc: Exception) -> Response:
    """An unknown page or method under a dashboard is a page too; elsewhere the API's JSON error."""
    assert isinstance(exc, HTTPException)
    area = area_of(request.url.path)
    if area is None:
        return await http_error(request, exc)
    message = {404: "There is no such page.", 405: "This page does not take that kind of request."}
    response = error_page(request, area, exc.status_code, message.get(exc.status_code, str(exc.detail)))
    response.headers.update(exc.headers or {})
    return response


def page(area: Area) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """A page handler whose refusals (PageError, the API's and the ledger's errors) are HTML pages."""

    def wrap(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return redirect(area.root + "/sign-in")
            except SecondFactorDue:
                return redirect(area.root + "/sign-in/second-factor")
            except NoWorkspace:
                return redirect(area.root + "/workspaces")
            except PageError as exc:
                return error_page(request, area, exc.status, exc.message)
            except ApiError as exc:
                return error_page(request, area, exc.status, exc.message)
            except LedgerError as exc:
                message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
                return error_page(request, area, exc.http_status, message)
            except Exception as exc:
                known = known_failure(exc)
                if known is None:
                    raise  # a bug: logged and answered by the middleware
                # PostgreSQL's own words about a value are for the log, not the page
                message = PAGE_FAILURES.get(known.status, known.message)
                response = error_page(request, area, known.status, message)
                response.headers.update(known.headers)
                return response

        return run

    return wrap


# ---- paging ------------------------------------------------------------------------------------

# Rows per page of every usage and transactions table
PAGE_ROWS = 50


def row_cursor(request: Request) -> int | None:
    """The `after` id of a page of rows (newest first), as the links to older pages give it."""
    after = request.query_params.get("after")
    if after is None:
        return None
    if not (after.isascii() and after.isdigit()) or not 0 < int(after) < 2**63:
        raise PageError(400, "The page asked for does not exist.")
    return int(after)


async def page_of_rows(request: Request, read: PageReader, user_id: uuid.UUID) -> dict[str, Any]:
    """A page of the user's rows from the request's `after` cursor, read by one of the API's page
    readers: {"rows": at most PAGE_ROWS, "next": the cursor of the next page, None on the last}."""
    rows = await read(services(request).pool, user_id, None, None, None, row_cursor(request), PAGE_ROWS + 1)
    return {"rows": rows[:PAGE_ROWS], "next": int(rows[PAGE_ROWS - 1]["id"]) if len(rows) > PAGE_ROWS else None}


# ---- cookies -----------------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    """Secure cookies wherever the page was served over https (directly or behind a proxy that says so)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def set_cookie(response: Response, request: Request, area: Area, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=area.root, secure=_secure(request), httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, request: Request, area: Area, name: str) -> None:
    response.delete_cookie(name, path=area.root, secure=_secure(request), httponly=True, samesite="strict")


def start_session(request: Request, area: Area, subject: str, user_id: str | None, location: str) -> Response:
    ttl = services(request).settings.session_ttl_seconds
    response = redirect(location)
    set_cookie(
        response, request, area, area.session_cookie, signer(request).issue(area.kind, subject, user_id, ttl), ttl
    )
    clear_cookie(response, request, area, area.sign_in_cookie)
    return response


async def end_session(request: Request, area: Area) -> Response:
    """Sign out: the session ends for good (a copy of the cookie works no more) and the cookie goes.
    Only a form of the session's own can do it, so no other site can sign anyone out."""
    session = session_of(request, area)
    if session is not None:
        await checked_form(request, session)
        await dashboard_sessions.end_session(services(request).pool, session.nonce, session.expires_at)
    response = redirect(area.root + "/sign-in")
    clear_cookie(response, request, area, area.session_cookie)
    return response


def session_of(request: Request, area: Area) -> Session | None:
    """The area's session the request's cookie holds (signature and expiry checked), else None."""
    return signer(request).read(request.cookies.get(area.session_cookie), area.kind)


def sign_in_form(
    request: Request, area: Area, template: str, context: Mapping[str, Any], status: int = 200
) -> Response:
    """The sign-in page, with a fresh token in its form and in a cookie: a sign-in posted from
    another site has neither the cookie (SameSite=Strict) nor the token, so nobody can be signed
    in to an account that is not theirs."""
    token = secrets.token_urlsafe(24)
    response = render(request, template, {**context, "area": area, "csrf": token}, status)
    set_cookie(response, request, area, area.sign_in_cookie, token, 3600)
    return response


# ---- forms -------------------------------------------------------------------------------------


def _same_origin(request: Request) -> bool:
    """A form posted by one of our pages: its Origin (sent by browsers on every POST) is ours."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the CSRF token still has to match
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last value of each), checked to be text and few."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise PageError(415, "This page takes forms only (application/x-www-form-urlencoded).")
    body = await request.body()
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "The form could not be read: it is not UTF-8 text, or it has too many fields.") from None
    fields = dict(pairs)
    if any("\x00" in value or "\x00" in name for name, value in fields.items()):
        raise PageError(400, "The form holds a NUL character.")
    return fields


def form_model(model: type[M], values: Mapping[str, Any]) -> M:
    """A form's fields checked by the JSON API's own model for the same action: one set of rules.
    The first problem is told the way the API tells it."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "form"
        raise PageError(400, f"{where}: {first['msg']}") from None


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """A form of this session's pages: posted from our origin, carrying the session's CSRF token."""
    if not _same_origin(request):
        raise PageError(403, "This form was sent from another site; nothing was changed.")
    fields = await read_form(request)
    if not signer(request).csrf_ok(session.nonce, fields.get("csrf")):
        raise PageError(
            403, "This form has expired or was not sent from this dashboard; reload the page and try again."
        )
    return fields


async def sign_in_fields(request: Request, area: Area) -> dict[str, str]:
    """A sign-in form, checked against the token its page set in the sign-in cookie."""
    if not _same_origin(request):
        raise PageError(403, "This sign-in was sent from another site.")
    fields = await read_form(request)
    expected = request.cookies.get(area.sign_in_cookie)
    given = fields.get("csrf")
    if not expected or not given or not secrets.compare_digest(expected.encode(), given.encode()):
        raise PageError(403, "The sign-in form has expired; reload the page and sign in again.")
    return fields

"""/dashboard for people: sign-up, sign-in with email and password (and TOTP), email verification,
password reset, and a person's own security page (password, two-factor, sessions).

Links in emails open a page with a button: the one-time token is spent by the POST, never by the
GET, so a mail scanner that follows links cannot spend it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from api.links import email_link_base
from api.services import services
from api.web.pages import (
    USER_AREA,
    PageError,
    SignInRequired,
    checked_form,
    clear_cookie,
    page,
    redirect,
    render,
    set_cookie,
    sign_in_fields,
    sign_in_form,
    signer,
)
from api.web.viewer import PERSON, person_session
from ledger.accounts import people, sessions, workspaces
from ledger.accounts.actor import Actor, acting, ip_or_none
from ledger.accounts.emails import clean_email
from ledger.accounts.mail import MailNotSent
from ledger.accounts.mail_messages import send_password_reset, send_verification
from ledger.accounts.passwords import password_problem
from ledger.accounts.totp import provisioning_uri
from ledger.logs import request_id_var

ROOT = USER_AREA.root
ISSUER = "Credit ledger"


def person_actor(request: Request, person_id: Any = None, email: str | None = None) -> Actor:
    """A person acting (or someone not yet known, signing up or in), with where the request came from."""
    base = Actor("person", None if person_id is None else str(person_id), email, person=person_id)
    return base.at(request.client.host if request.client else None, request.headers.get("user-agent"),
                   request_id_var.get())  # fmt: skip


def _ip(request: Request) -> str | None:
    """The client's address when it is an IP (a unix socket's peer is not): stored as inet."""
    return ip_or_none(request.client.host) if request.client else None


def _lifetime(request: Request) -> timedelta:
    return timedelta(seconds=services(request).settings.session_ttl_seconds)


async def start_person_session(
    request: Request, person_id: Any, *, mfa_pending: bool, location: str, workspace_id: Any = None
) -> Response:
    """A new session row and its cookie (the cookie's nonce, hashed, finds the row)."""
    svc = services(request)
    ttl = svc.settings.session_ttl_seconds
    cookie = signer(request).issue("user", PERSON, str(person_id), ttl)
    read = signer(request).read(cookie, "user")
    assert read is not None
    if workspace_id is None:
        memberships = await workspaces.workspaces_of(svc.pool, person_id)
        workspace_id = memberships[0]["id"] if memberships else None
    async with acting(svc.pool, person_actor(request, person_id)) as conn:
        await sessions.open_session(
            conn, person_id, workspace_id, read.nonce,
            request.headers.get("user-agent"), _ip(request), _lifetime(request), mfa_pending=mfa_pending,
        )  # fmt: skip
    response = redirect(location)
    set_cookie(response, request, USER_AREA, USER_AREA.session_cookie, cookie, ttl)
    clear_cookie(response, request, USER_AREA, USER_AREA.sign_in_cookie)
    return response


async def _send(request: Request, what: str, send: Any) -> str | None:
    """Sends an email; what the page should say when it could not be sent."""
    try:
        await send
    except (MailNotSent, ApiError) as exc:
        return f"The {what} email could not be sent ({exc}); ask your operator."
    return None


# ---- sign-up and sign-in ------------------------------------------------------------------------


@page(USER_AREA)
async def sign_up_page(request: Request) -> Response:
    return sign_in_form(request, USER_AREA, "user/sign_up.html", {})


@page(USER_AREA)
async def sign_up(request: Request) -> Response:
    fields = await sign_in_fields(request, USER_AREA)
    try:
        email = clean_email(fields.get("email", ""))
    except ValueError as exc:
        return sign_in_form(request, USER_AREA, "user/sign_up.html", {"error": str(exc)}, 400)
    name = (fields.get("name") or "").strip()[:100] or None
    svc = services(request)
    try:
        async with acting(svc.pool, person_actor(request, None, email)) as conn:
            made = await people.sign_up(conn, email, fields.get("password", ""), name)
    except (people.WeakPassword, people.EmailTaken) as exc:
        return sign_in_form(
            request, USER_AREA, "user/sign_up.html", {"error": exc.message, "email": email}, exc.http_status
        )
    if made.verify_token is not None:
        await _send(request, "verification", _verification(request, email, made.verify_token))
    location = ROOT + "?notice=signed_up"
    return await start_person_session(request, made.person["id"], mfa_pending=False, location=location)


async def _verification(request: Request, email: str, token: str) -> None:
    await send_verification(services(request).mailer, email_link_base(request), email, token)


async def sign_in_person(request: Request, fields: dict[str, str]) -> Response:
    """The email-and-password form of /dashboard/sign-in (user_pages.sign_in passes it here)."""
    svc = services(request)
    email = fields.get("email", "").strip()
    async with acting(svc.pool, person_actor(request, None, email[:254])) as conn:
        signed = await people.sign_in(conn, email, fields.get("password", ""), _ip(request))
    if signed is None:
        from api.web.user_pages import sign_in_context  # user_pages imports this module

        context = sign_in_context(request, people.SIGN_IN_FAILED)
        return sign_in_form(request, USER_AREA, "user/sign_in.html", context, 401)
    location = ROOT + "/sign-in/second-factor" if signed.mfa_needed else ROOT
    return await start_person_session(request, signed.person_id, mfa_pending=signed.mfa_needed, location=location)


@page(USER_AREA)
async def second_factor_page(request: Request) -> Response:
    found = await person_session(request, mfa_done=False)
    if not found.live.mfa_pending:
        return redirect(ROOT)
    return render(request, "user/second_factor.html", {}, session=found.cookie)


@page(USER_AREA)
async def second_factor(request: Request) -> Response:
    found = await person_session(request, mfa_done=False)
    fields = await checked_form(request, found.cookie)
    if not found.live.mfa_pending:
        return redirect(ROOT)
    svc = services(request)
    person_id = found.live.person_id
    async with acting(svc.pool, person_actor(request, person_id, found.live.email)) as conn:
        ok = await people.second_factor(conn, svc.cipher, person_id, fields.get("code", "").strip()[:32], _ip(request))
        if ok:
            await sessions.pass_mfa(conn, found.live.id, _lifetime(request))
    if not ok:
        context = {"error": "That code is wrong or was used already."}
        return render(request, "user/second_factor.html", context, 401, session=found.cookie)
    return redirect(ROOT)


# ---- email links: verification, password reset --------------------------------------------------


@page(USER_AREA)
async def verify_email_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:100]
    return sign_in_form(request, USER_AREA, "user/token_step.html", _verify_context(token))


def _verify_context(token: str, error: str | None = None) -> dict[str, Any]:
    return {"token": token, "action": ROOT + "/verify-email", "heading": "Confirm your email address",
            "button": "Confirm", "error": error}  # fmt: skip


@page(USER_AREA)
async def verify_email(request: Request) -> Response:
    fields = await sign_in_fields(request, USER_AREA)
    token = fields.get("token", "")
    async with acting(services(request).pool, person_actor(request)) as conn:
        person_id = await people.verify_email(conn, token)
    if person_id is None:
        context = _verify_context("", "This link is unknown, used or expired: sign in and ask for a new one.")
        return sign_in_form(request, USER_AREA, "user/token_step.html", context, 400)
    return redirect(ROOT, notice="email_verified")


@page(USER_AREA)
async def forgot_password_page(request: Request) -> Response:
    return sign_in_form(request, USER_AREA, "user/forgot_password.html", {})


@page(USER_AREA)
async def forgot_password(request: Request) -> Response:
    """Always the same answer: it does not tell who has an account."""
    fields = await sign_in_fields(request, USER_AREA)
    svc = services(request)
    email = fields.get("email", "").strip()[:254]
    base = email_link_base(request)
    person_id = await people.person_id_by_email(svc.pool, email) if email else None
    if person_id is not None:
        async with acting(svc.pool, person_actor(request, person_id, email)) as conn:
            token = await people.issue_token(conn, person_id, "reset_password")
        await _send(request, "reset", send_password_reset(svc.mailer, base, email, token))
    context = {"sent": True}
    return sign_in_form(request, USER_AREA, "user/forgot_password.html", context)


@page(USER_AREA)
async def reset_password_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:100]
    return sign_in_form(request, USER_AREA, "user/reset_password.html", {"token": token})


@page(USER_AREA)
async def reset_password(request: Request) -> Response:
    fields = await sign_in_fields(request, USER_AREA)
    token, password = fields.get("token", ""), fields.get("password", "")
    if (problem := password_problem(password)) is not None:
        return sign_in_form(request, USER_AREA, "user/reset_password.html", {"token": token, "error": problem}, 400)
    async with acting(services(request).pool, person_actor(request)) as conn:
        person_id = await people.use_token(conn, token, "reset_password")
        if person_id is not None:
            await people.set_password(conn, person_id, password)
            await sessions.end_sessions(conn, person_id, "password reset")
    if person_id is None:
        context = {"token": "", "error": "This link is unknown, used or expired: ask for a new one."}
        return sign_in_form(request, USER_AREA, "user/reset_password.html", context, 400)
    return redirect(ROOT + "/sign-in", notice="password_reset")


# ---- a person's own security page ---------------------------------------------------------------

NOTICES = {
    "password_changed": "Password changed. Your other sessions were ended.",
    "totp_off": "Two-factor sign-in is off.",
    "session_ended": "Session ended.",
    "sessions_ended": "Your other sessions were ended.",
    "verification_sent": "A new verification email is on its way.",
}


async def _security_page(request: Request, extra: dict[str, Any] | None = None, status: int = 200) -> Response:
    found = await person_session(request)
    pool = services(request).pool
    person = await people.person(pool, found.live.person_id)
    if person is None:
        raise SignInRequired
    context = {
        "person": person,
        "sessions": await sessions.sessions_of(pool, found.live.person_id),
        "this_session": found.live.id,
        "totp_available": services(request).cipher is not None,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        **(extra or {}),
    }
    return render(request, "user/security.html", context, status, session=found.cookie)


@page(USER_AREA)
async def security_page(request: Request) -> Response:
    return await _security_page(request)


@page(USER_AREA)
async def change_password(request: Request) -> Response:
    found = await person_session(request)
    fields = await checked_form(request, found.cookie)
    svc = services(request)
    person_id = found.live.person_id
    if not await people.password_matches(svc.pool, person_id, fields.get("current", "")):
        return await _security_page(request, {"error": "Your current password is not that."}, 400)
    try:
        async with acting(svc.pool, person_actor(request, person_id, found.live.email)) as conn:
            await people.set_password(conn, person_id, fields.get("password", ""))
            await sessions.end_sessions(conn, person_id, "password changed", keep=found.live.id)
    except people.WeakPassword as exc:
        return await _security_page(request, {"error": exc.message}, 400)
    return redirect(ROOT + "/security", notice="password_changed")


@page(USER_AREA)
async def resend_verification(request: Request) -> Response:
    found = await person_session(request)
    await checked_form(request, found.cookie)
    svc = services(request)
    person = await people.person(svc.pool, found.live.person_id)
    if person is None or person["email_verified_at"] is not None:
        return redirect(ROOT + "/security")
    async with acting(svc.pool, person_actor(request, person["id"], person["email"])) as conn:
        token = await people.issue_token(conn, person["id"], "verify_email")
    problem = await _send(request, "verification", _verification(request, person["email"], token))
    if problem:
        raise PageError(503, problem)
    return redirect(ROOT + "/security", notice="verification_sent")


@page(USER_AREA)
async def start_totp(request: Request) -> Response:
    found = await person_session(request)
    await checked_form(request, found.cookie)
    svc = services(request)
    async with acting(svc.pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        secret = await people.start_totp(conn, svc.cipher, found.live.person_id)
    uri = provisioning_uri(secret, found.live.email, ISSUER)
    # shown on this answer only (never in a URL, never stored in plaintext)
    return await _security_page(request, {"totp_secret": secret, "totp_uri": uri})


@page(USER_AREA)
async def confirm_totp(request: Request) -> Response:
    found = await person_session(request)
    fields = await checked_form(request, found.cookie)
    svc = services(request)
    async with acting(svc.pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        codes = await people.confirm_totp(conn, svc.cipher, found.live.person_id, fields.get("code", "")[:32])
    if codes is None:
        return await _security_page(request, {"error": "That code is not right: set up the secret again."}, 400)
    return await _security_page(request, {"backup_codes": codes})


@page(USER_AREA)
async def disable_totp(request: Request) -> Response:
    found = await person_session(request)
    fields = await checked_form(request, found.cookie)
    svc = services(request)
    if not await people.password_matches(svc.pool, found.live.person_id, fields.get("password", "")):
        return await _security_page(request, {"error": "Turning two-factor off needs your password."}, 400)
    async with acting(svc.pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        await people.disable_totp(conn, found.live.person_id)
    return redirect(ROOT + "/security", notice="totp_off")


@page(USER_AREA)
async def end_one_session(request: Request) -> Response:
    found = await person_session(request)
    await checked_form(request, found.cookie)
    try:
        session_id = uuid.UUID(request.path_params["session_id"])
    except ValueError:
        raise PageError(404, "No such session of yours.") from None
    async with acting(services(request).pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        ended = await sessions.end_session(conn, found.live.person_id, session_id, "ended by its person")
    if not ended:
        raise PageError(404, "No such session of yours.")
    return redirect(ROOT + "/security", notice="session_ended")


@page(USER_AREA)
async def end_other_sessions(request: Request) -> Response:
    found = await person_session(request)
    await checked_form(request, found.cookie)
    async with acting(services(request).pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        await sessions.end_sessions(conn, found.live.person_id, "ended by its person", keep=found.live.id)
    return redirect(ROOT + "/security", notice="sessions_ended")


async def end_person_session(request: Request) -> None:
    """Signing out of a person's session ends its row too (user_pages.sign_out)."""
    try:
        found = await person_session(request, mfa_done=False)
    except SignInRequired:
        return
    async with acting(services(request).pool, person_actor(request, found.live.person_id, found.live.email)) as conn:
        await sessions.end_session(conn, found.live.person_id, found.live.id, "signed out")

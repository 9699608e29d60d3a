"""People (seed 004 `users`): sign-up, email verification, password reset and change, sign-in
with lockout, TOTP. Call the writers inside `acting` so the audit log names who acted.

Sign-in answers alike for an unknown email, a wrong password and a locked account (the same
SIGN_IN_FAILED, after the same argon2 work), so it tells an attacker nothing about who has an
account."""

from __future__ import annotations

import json
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypedDict, cast

import asyncpg

from ledger.accounts import audit
from ledger.accounts.passwords import (
    hash_password_async,
    password_problem,
    verify_against_nothing_async,
    verify_password_async,
)
from ledger.accounts.tokens import new_token, token_hash
from ledger.accounts.totp import hash_backup_code, new_backup_codes, new_totp_secret, totp_ok
from ledger.accounts.workspaces import Workspace, create_workspace
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import EmailTaken, LedgerError, SecondFactorUnavailable, WeakPassword

log = logging.getLogger("ledger.accounts")

# Failed sign-ins in a row (wrong password or wrong second factor) that lock a person out, and for how long
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
VERIFY_EMAIL_FOR = timedelta(days=2)
RESET_PASSWORD_FOR = timedelta(hours=1)
TOKEN_PREFIX = {"verify_email": "ev_", "reset_password": "pr_"}
TokenPurpose = Literal["verify_email", "reset_password"]


SIGN_IN_FAILED = (
    "Wrong email or password, or too many failed attempts. Try again in a few minutes, or reset your password."
)


class SecretBox(Protocol):
    """What stores a TOTP secret encrypted (ledger.gateway.byok.KeyCipher), bound to its person."""

    def encrypt(self, plaintext: str, user_id: uuid.UUID, provider: str) -> bytes: ...

    def decrypt(self, blob: bytes, user_id: uuid.UUID, provider: str) -> str: ...


# What the TOTP secret's ciphertext is bound to, beside the person's id
TOTP_PURPOSE = "totp"


class Person(TypedDict):
    id: uuid.UUID
    email: str
    name: str | None
    email_verified_at: datetime | None
    mfa_enabled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SignedUp:
    person: Person
    workspace: Workspace  # their personal workspace
    verify_token: str | None  # for the verification email; None when the email was proved already


@dataclass(frozen=True, slots=True)
class SignedIn:
    person_id: uuid.UUID
    email: str
    mfa_needed: bool


def _person(row: object) -> Person:
    return cast(Person, dict(cast(asyncpg.Record, row)))


def check_password(plain: str) -> None:
    if (problem := password_problem(plain)) is not None:
        raise WeakPassword(problem)


async def person(db: Executor, person_id: uuid.UUID) -> Person | None:
    row = await db.fetchrow(query("person_by_id"), person_id)
    return None if row is None else _person(row)


async def person_id_by_email(db: Executor, email: str) -> uuid.UUID | None:
    return cast(uuid.UUID | None, await db.fetchval(query("person_by_email"), email))


async def sign_up(
    db: Executor, email: str, password: str, name: str | None = None, *, email_proved: bool = False
) -> SignedUp:
    """A new person with their personal workspace (they are its OWNER). `email_proved`: an
    invitation's token already showed they read that mailbox."""
    check_password(password)
    if name is not None and (len(name) > 100 or any(unicodedata.category(ch) == "Cc" for ch in name)):
        raise LedgerError("A name has at most 100 characters and no control characters.", param="name")
    hashed = await hash_password_async(password)
    try:
        row = await db.fetchrow(query("insert_person"), email, name, hashed, email_proved)
    except asyncpg.UniqueViolationError:
        raise EmailTaken("There is already an account with this email: sign in, or reset its password.") from None
    except asyncpg.CheckViolationError:
        raise LedgerError("That is not an email address this service can use.", param="email") from None
    new = _person(row)
    personal = await create_workspace(
        db, "Personal workspace", new["id"], kind="personal", email=email, self_service=True
    )
    token = None if email_proved else await issue_token(db, new["id"], "verify_email")
    return SignedUp(new, personal, token)


async def issue_token(db: Executor, person_id: uuid.UUID, purpose: TokenPurpose) -> str:
    token = new_token(TOKEN_PREFIX[purpose])
    valid_for = VERIFY_EMAIL_FOR if purpose == "verify_email" else RESET_PASSWORD_FOR
    await db.fetchval(query("insert_person_token"), person_id, purpose, token_hash(token), valid_for)
    return token


async def use_token(db: Executor, token: str, purpose: TokenPurpose) -> uuid.UUID | None:
    """The person a one-time token is for, spending it; None when unknown, used or expired."""
    if not token.startswith(TOKEN_PREFIX[purpose]) or len(token) > 100:
        return None
    return cast(uuid.UUID | None, await db.fetchval(query("use_person_token"), token_hash(token), purpose))


async def verify_email(db: Executor, token: str) -> uuid.UUID | None:
    person_id = await use_token(db, token, "verify_email")
    if person_id is not None:
        await db.fetchval(query("mark_email_verified"), person_id)
    return person_id


async def set_password(db: Executor, person_id: uuid.UUID, password: str) -> None:
    """The new password, the lockout lifted; the caller ends the person's sessions (same transaction)."""
    check_password(password)
    await db.fetchval(query("set_person_password"), person_id, await hash_password_async(password))


async def password_matches(db: Executor, person_id: uuid.UUID, password: str) -> bool:
    stored = await db.fetchval(query("password_hash_of_person"), person_id)
    return stored is not None and await verify_password_async(stored, password)


async def sign_in(db: Executor, email: str, password: str, ip: str | None) -> SignedIn | None:
    """The person, when the email and password are right and they are not locked out; else None,
    after the same work for every cause (tell it with SIGN_IN_FAILED). Every attempt is audited.
    Call inside `acting`: the failure count, the lock and the audit row commit with it, which is
    why a failure is returned, not raised (raising would roll them back)."""
    row = await db.fetchrow(query("person_for_sign_in"), email[:254])
    if row is None:
        await verify_against_nothing_async(password)
        await audit.record(db, "login.failed", "person", None, after=json.dumps({"email": email[:254]}))
        return None
    good = await verify_password_async(row["password_hash"], password)
    if row["locked"] or not good:
        if not row["locked"]:
            await db.fetchval(query("sign_in_failed"), row["id"], MAX_FAILED_SIGN_INS, LOCKOUT)
        reason = "locked" if row["locked"] else "wrong password"
        await audit.record(
            db, "login.failed", "person", str(row["id"]), person_id=row["id"], after=json.dumps({"reason": reason})
        )
        return None
    if row["mfa_enabled_at"] is None:
        await signed_in(db, row["id"], ip)
    return SignedIn(row["id"], row["email"], mfa_needed=row["mfa_enabled_at"] is not None)


async def signed_in(db: Executor, person_id: uuid.UUID, ip: str | None) -> None:
    await db.fetchval(query("sign_in_succeeded"), person_id, ip)
    await audit.record(db, "login.succeeded", "person", str(person_id), person_id=person_id)


async def second_factor(db: Executor, box: SecretBox | None, person_id: uuid.UUID, code: str, ip: str | None) -> bool:
    """The second step of a sign-in: a TOTP code (once per step) or an unused backup code. A wrong
    one counts toward the lockout like a wrong password, and a locked-out person's codes are all
    refused (so the second step cannot be brute-forced either)."""
    state = await db.fetchrow(query("mfa_of_person"), person_id)
    ok = False
    if state is not None and state["mfa_enabled_at"] is not None and box is not None and not state["locked"]:
        secret = _opened(box, state["mfa_secret_encrypted"], person_id)
        step = None if secret is None else totp_ok(secret, code, last_used_step=state["mfa_last_step"])
        if step is not None:
            await db.fetchval(query("use_mfa_step"), person_id, step)
            ok = True
        elif len(code) <= 20 and await db.fetchval(query("use_backup_code"), person_id, hash_backup_code(code)):
            ok = True
    if not ok:
        if state is not None and not state["locked"]:
            await db.fetchval(query("sign_in_failed"), person_id, MAX_FAILED_SIGN_INS, LOCKOUT)
        await audit.record(
            db, "login.failed", "person", str(person_id), person_id=person_id,
            after=json.dumps({"reason": "wrong second factor"}),
        )  # fmt: skip
        return False
    await signed_in(db, person_id, ip)
    return True


def _opened(box: SecretBox, blob: bytes, person_id: uuid.UUID) -> str | None:
    """The TOTP secret, or None (logged) when it decrypts under no configured key: the encryption
    key was rotated without `ledger byok rotate`. Backup codes still work; an operator can turn
    two-factor off for the person."""
    try:
        return box.decrypt(blob, person_id, TOTP_PURPOSE)
    except ValueError:
        log.error("the TOTP secret of person %s decrypts under no configured encryption key", person_id)
        return None


async def start_totp(db: Executor, box: SecretBox | None, person_id: uuid.UUID) -> str:
    """A new TOTP secret for the person to add to their app (not on until confirmed)."""
    if box is None:
        raise SecondFactorUnavailable(
            "Two-factor sign-in needs the operator to set LEDGER_ENCRYPTION_KEY (its secret is stored encrypted)."
        )
    secret = new_totp_secret()
    stored = await db.fetchval(query("set_mfa_secret"), person_id, box.encrypt(secret, person_id, TOTP_PURPOSE))
    if stored is None:
        raise LedgerError("Two-factor sign-in is on already: turn it off first to set up a new secret.", code="mfa_on")
    return secret


async def confirm_totp(db: Executor, box: SecretBox | None, person_id: uuid.UUID, code: str) -> list[str] | None:
    """Turns TOTP on once a code from the new secret is right: returns the backup codes (shown
    once), None when the code is wrong."""
    state = await db.fetchrow(query("mfa_of_person"), person_id)
    if box is None or state is None or state["mfa_secret_encrypted"] is None or state["mfa_enabled_at"] is not None:
        return None
    secret = _opened(box, state["mfa_secret_encrypted"], person_id)
    step = None if secret is None else totp_ok(secret, code)
    if step is None:
        return None
    codes = new_backup_codes()
    await db.fetchval(query("enable_mfa"), person_id, step, [hash_backup_code(code) for code in codes])
    return codes


async def disable_totp(db: Executor, person_id: uuid.UUID) -> None:
    await db.fetchval(query("disable_mfa"), person_id)


__all__ = ["EmailTaken", "SecondFactorUnavailable", "WeakPassword"]

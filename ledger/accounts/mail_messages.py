"""The emails people get: what each says and the one-time link in it. Links point at the
dashboard under LEDGER_PUBLIC_URL (or the address the request came to)."""

from __future__ import annotations

from ledger.accounts.mail import Mailer

PRODUCT = "the credit ledger"


async def send_verification(mailer: Mailer, base_url: str, to: str, token: str) -> None:
    link = f"{base_url}/dashboard/verify-email?token={token}"
    text = (
        f"Welcome to {PRODUCT}.\n\nConfirm this email address by opening:\n\n{link}\n\n"
        "The link works once, for two days. If you did not sign up, ignore this email.\n"
    )
    await mailer.send(to, "Confirm your email address", text)


async def send_password_reset(mailer: Mailer, base_url: str, to: str, token: str) -> None:
    link = f"{base_url}/dashboard/reset-password?token={token}"
    text = (
        f"Someone asked to reset the password of your account at {PRODUCT}.\n\n"
        f"Choose a new password here:\n\n{link}\n\n"
        "The link works once, for one hour. If it was not you, ignore this email: your password stays.\n"
    )
    await mailer.send(to, "Reset your password", text)


async def send_invitation(mailer: Mailer, base_url: str, to: str, workspace: str, role: str, token: str) -> None:
    link = f"{base_url}/dashboard/invitations/accept?token={token}"
    text = (
        f"You are invited to join the workspace {workspace!r} at {PRODUCT} as {role.lower()}.\n\n"
        f"Accept (you can sign up or sign in there):\n\n{link}\n\n"
        "The invitation works once, for seven days.\n"
    )
    await mailer.send(to, f"You are invited to {workspace}", text)

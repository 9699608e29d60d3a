"""Sending email: through SMTP when LEDGER_SMTP_URL is set, else to an outbox folder (one .eml file
per message) with one log line naming the file. The log line never holds the body: bodies carry
one-time links, and the log is read by more people than the mailbox."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ledger.settings import Settings

log = logging.getLogger("ledger.mail")
SMTP_TIMEOUT_SECONDS = 10


class MailNotSent(Exception):
    """The mail server could not be reached or refused the message (the message says why, never
    the server's password)."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


def message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content(text)
    return mail


class SmtpMailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("LEDGER_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
        self._implicit_tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._implicit_tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender

    def _send(self, mail: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._implicit_tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT_SECONDS)
        with smtp:
            smtp.ehlo()
            if not self._implicit_tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._user is not None:
                smtp.login(self._user, self._password or "")
            smtp.send_message(mail)

    async def send(self, to: str, subject: str, text: str) -> None:
        try:
            await asyncio.to_thread(self._send, message(self._sender, to, subject, text))
        except (OSError, smtplib.SMTPException) as exc:
            # the exception's own text may quote the server, never our password: name its class only
            raise MailNotSent(
                f"the mail server {self._host}:{self._port} did not take the message ({type(exc).__name__})"
            ) from None


class OutboxMailer:
    def __init__(self, folder: Path, sender: str) -> None:
        self._folder = folder
        self._sender = sender

    def _write(self, mail: EmailMessage) -> Path:
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self._folder / f"{stamp}-{secrets.token_hex(4)}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(mail))
        return path

    async def send(self, to: str, subject: str, text: str) -> None:
        path = await asyncio.to_thread(self._write, message(self._sender, to, subject, text))
        log.info("email to %s (%s) written to %s: no SMTP server is set (LEDGER_SMTP_URL)", to, subject, path)


def outbox_dir(settings: Settings) -> Path:
    return settings.mail_outbox_dir or settings.data_dir / "outbox"


def mailer_of_settings(settings: Settings) -> Mailer:
    if settings.smtp_url is not None:
        return SmtpMailer(settings.smtp_url.get_secret_value(), settings.mail_from)
    return OutboxMailer(outbox_dir(settings), settings.mail_from)

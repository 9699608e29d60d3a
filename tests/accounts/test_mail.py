"""Email through a real SMTP server (aiosmtpd on 127.0.0.1), and the outbox folder without one."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ledger.accounts.mail import MailNotSent, OutboxMailer, SmtpMailer, mailer_of_settings
from ledger.settings import Settings


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ledger", b"s3cret pass")
    return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_mail_goes_through_smtp_with_the_urls_credentials(smtp_server):
    inbox, port = smtp_server
    mailer = mailer_of_settings(Settings(smtp_url=f"smtp://ledger:s3cret%20pass@127.0.0.1:{port}", mail_from="b@x.io"))
    assert isinstance(mailer, SmtpMailer)
    await mailer.send("someone@example.com", "Confirm your email address", "Open https://x/verify?token=ev_1")
    [(recipients, message)] = inbox.messages
    assert recipients == ["someone@example.com"]
    assert (message["From"], message["Subject"]) == ("b@x.io", "Confirm your email address")
    assert "token=ev_1" in message.get_content()


async def test_a_refused_sign_in_or_a_dead_server_is_mail_not_sent_without_the_password(smtp_server):
    _, port = smtp_server
    wrong = SmtpMailer(f"smtp://ledger:wrong-password-xyz@127.0.0.1:{port}", "b@x.io")
    with pytest.raises(MailNotSent) as refused:
        await wrong.send("a@example.com", "s", "t")
    dead = SmtpMailer(f"smtp://ledger:wrong-password-xyz@127.0.0.1:{free_port()}", "b@x.io")
    with pytest.raises(MailNotSent) as unreachable:
        await dead.send("a@example.com", "s", "t")
    for failure in (refused.value, unreachable.value):
        assert "wrong-password-xyz" not in str(failure)


async def test_without_smtp_each_email_is_a_file_and_one_log_line_without_its_link(tmp_path: Path, caplog):
    mailer = mailer_of_settings(Settings(mail_outbox_dir=tmp_path / "outbox"))
    assert isinstance(mailer, OutboxMailer)
    with caplog.at_level(logging.INFO, logger="ledger.mail"):
        await mailer.send("new@example.com", "Reset your password", "https://x/reset?token=pr_secret")
    [path] = (tmp_path / "outbox").glob("*.eml")
    assert "token=pr_secret" in message_from_bytes(path.read_bytes(), policy=default).get_content()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert str(path) in caplog.text and "pr_secret" not in caplog.text

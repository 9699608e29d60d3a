"""Money emails and an email channel through a real SMTP server (aiosmtpd on 127.0.0.1): the
owner and a billing contact get one low-balance email per crossing, and an email channel gets its
code and then the same money event. (A mail server that refuses: tests/notify/test_delivery.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.accounts.helpers import make_team
from tests.accounts.test_mail import Inbox, smtp_server  # noqa: F401  (the fixture)

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.05)
    return found


def body(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


@pytest.fixture
def service(start_service, upstreams, smtp_server) -> Iterator[Any]:  # noqa: F811
    _, port = smtp_server
    yield start_service(
        upstreams,
        smtp_url=f"smtp://ledger:s3cret%20pass@127.0.0.1:{port}",
        notify_interval_seconds=0.05,
    )


async def test_low_balance_is_emailed_once_to_the_owner_the_billing_contact_and_an_email_channel(
    pool,
    service,
    smtp_server,  # noqa: F811
):
    inbox, _ = smtp_server
    team = await make_team(pool, credits_="10", roles=("OWNER", "VIEWER"))
    contacts = call(service, "POST", f"{ORG}/notification_settings", team.admin_key,
                    {"billing_contacts": [str(team.people["VIEWER"])]})  # fmt: skip
    assert contacts.status_code == 200
    channel = call(service, "POST", f"{ORG}/notification_channels", team.admin_key,
                   {"name": "finance", "type": "email", "target": "finance@example.com"}).json()  # fmt: skip
    [(to, test)] = wait_for(lambda: list(inbox.messages))
    assert to == ["finance@example.com"]
    code = re.search(r"enter the code (\d{6})", body(test))
    assert code is not None
    verified = call(service, "POST", f"{ORG}/notification_channels/{channel['id']}/verify", team.admin_key,
                    {"code": code.group(1)})  # fmt: skip
    assert verified.json()["verified"] is True
    spendable = Decimal(call(service, "GET", f"{ORG}/notification_settings", team.admin_key).json()["spendable"])
    call(service, "POST", f"{ORG}/notification_settings", team.admin_key,
         {"low_balance_threshold": str(spendable - Decimal("0.000001"))})  # fmt: skip
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    for _ in range(3):
        service.client(key).chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    wait_for(lambda: len(inbox.messages) >= 4)
    time.sleep(0.3)
    low = [(to, m) for to, m in inbox.messages if "balance low" in str(m["Subject"])]
    recipients = sorted(r for to, _ in low for r in to)
    expected = sorted([team.emails["OWNER"].lower(), team.emails["VIEWER"].lower(), "finance@example.com"])
    assert recipients == expected  # once each, not once per request
    assert "once per crossing" in body(low[0][1])
    # marked sent once the mail server took each (after the inbox has it)
    for _ in range(400):
        if await pool.fetchval("SELECT count(*) FROM notification_emails WHERE status = 'sent'") == 2:
            break
        time.sleep(0.05)
    assert await pool.fetchval("SELECT count(*) FROM notification_emails WHERE status = 'sent'") == 2

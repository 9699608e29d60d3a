"""Hostile and mistaken webhook requests: each a 4xx in OpenAI's error shape with nothing written,
private targets refused unless the operator allows them, another organization's webhook a 404, and
the roles' rights kept."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.accounts.helpers import make_team
from tests.fake_receivers import WebhookReceiver

ORG = "/v1/organization"


def call(service: Any, method: str, path: str, key: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


@pytest.fixture
def strict(start_service):
    return start_service()


@pytest.fixture
def lenient(start_service):
    return start_service(webhook_allow_private_targets=True, notify_interval_seconds=0.05)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "url": "http://127.0.0.1:9/", "events": ["*"]},
        {"name": "x", "url": "http://169.254.169.254/latest/meta-data/", "events": ["*"]},
        {"name": "x", "url": "http://[::1]/", "events": ["*"]},
        {"name": "x", "url": "http://localhost/", "events": ["*"]},
        {"name": "x", "url": "file:///etc/passwd", "events": ["*"]},
        {"name": "x", "url": "http://user:secret@example.com/", "events": ["*"]},
        {"name": "x", "url": "https://example.com/", "events": ["nope"]},
        {"name": "x", "url": "https://example.com/", "events": []},
        {"name": "", "url": "https://example.com/", "events": ["*"]},
        {"name": "x\u0007", "url": "https://example.com/", "events": ["*"]},
        {"name": "x", "url": "https://example.com/", "events": ["*"], "timeout_ms": 10**12},
        {"name": "x", "url": "https://example.com/", "events": ["*"], "secret": "mine"},
        {"name": "x", "url": ["https://example.com/"], "events": ["*"]},
        {"name": "x", "url": "https://example.com/", "events": "*"},
        [],
        "x",
    ],
)
async def test_a_bad_webhook_is_a_400_and_nothing_is_written(pool, strict, body):
    team = await make_team(pool)
    refused = call(strict, "POST", f"{ORG}/webhooks", team.admin_key, body)
    assert refused.status_code == 400, refused.text
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    assert await pool.fetchval("SELECT count(*) FROM webhooks") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_logs WHERE resource_type = 'webhook'") == 0


async def test_another_organizations_webhook_is_a_404_and_roles_are_kept(pool, lenient):
    receiver = WebhookReceiver().start()
    try:
        ours, theirs = await make_team(pool), await make_team(pool)
        made = call(
            lenient, "POST", f"{ORG}/webhooks", ours.admin_key, {"name": "ours", "url": receiver.url, "events": ["*"]}
        )
        assert made.status_code == 201, made.text
        hook = made.json()["id"]
        for method, path, body in [
            ("GET", f"{ORG}/webhooks/{hook}", None),
            ("POST", f"{ORG}/webhooks/{hook}", {"name": "mine now"}),
            ("DELETE", f"{ORG}/webhooks/{hook}", None),
            ("POST", f"{ORG}/webhooks/{hook}/rotate_secret", {}),
            ("POST", f"{ORG}/webhooks/{hook}/test", None),
            ("GET", f"{ORG}/webhooks/{hook}/deliveries", None),
            ("POST", f"{ORG}/webhooks/{hook}/deliveries/1/replay", None),
            ("GET", f"{ORG}/webhooks/{uuid.uuid4()}", None),
            ("GET", f"{ORG}/webhooks/not-an-id", None),
        ]:
            answer = call(lenient, method, path, theirs.admin_key, body)
            assert answer.status_code == 404, (method, path, answer.text)
        assert call(lenient, "GET", f"{ORG}/webhooks", theirs.admin_key).json()["data"] == []
        assert (await pool.fetchrow("SELECT name FROM webhooks"))["name"] == "ours"
        # a gateway key is no admin key
        answer = call(lenient, "GET", f"{ORG}/webhooks", "sk-lg-" + "x" * 40)
        assert answer.status_code == 401
        # test, then replay its delivery: two attempts of one message, both verified
        receiver.secrets.append(made.json()["secret"])
        assert call(lenient, "POST", f"{ORG}/webhooks/{hook}/test", ours.admin_key).status_code == 202
        [first] = receiver.wait_for("webhook.test")
        assert first.verified_with
        delivery = call(lenient, "GET", f"{ORG}/webhooks/{hook}/deliveries", ours.admin_key).json()["data"][0]
        replayed = call(lenient, "POST", f"{ORG}/webhooks/{hook}/deliveries/{delivery['id']}/replay", ours.admin_key)
        assert replayed.status_code == 202
        second = receiver.wait_for("webhook.test", 2)[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        # turned off: a test is refused, and nothing is queued for it
        call(lenient, "POST", f"{ORG}/webhooks/{hook}", ours.admin_key, {"enabled": False})
        assert call(lenient, "POST", f"{ORG}/webhooks/{hook}/test", ours.admin_key).status_code == 409
        deleted = call(lenient, "DELETE", f"{ORG}/webhooks/{hook}", ours.admin_key)
        assert deleted.json()["deleted"] is True
        actions = [
            r["action"]
            for r in await pool.fetch("SELECT action FROM audit_logs WHERE resource_type = 'webhook' ORDER BY id")
        ]
        assert actions == ["webhook.created", "webhook.deactivated", "webhook.deleted"]
    finally:
        receiver.stop()


async def test_a_workspace_has_at_most_twenty_webhooks(pool, lenient):
    team = await make_team(pool)
    body = {"name": "n", "url": "http://127.0.0.1:9/", "events": ["balance.low"]}
    for _ in range(20):
        assert call(lenient, "POST", f"{ORG}/webhooks", team.admin_key, body).status_code == 201
    too_many = call(lenient, "POST", f"{ORG}/webhooks", team.admin_key, body)
    assert too_many.status_code == 409


async def test_billing_contacts_are_members_only(pool, lenient):
    team = await make_team(pool, roles=("OWNER", "VIEWER"))
    stranger = call(
        lenient, "POST", f"{ORG}/notification_settings", team.admin_key, {"billing_contacts": [str(uuid.uuid4())]}
    )
    assert stranger.status_code == 400 and stranger.json()["error"]["param"] == "billing_contacts"
    viewer = str(team.people["VIEWER"])
    set_ = call(lenient, "POST", f"{ORG}/notification_settings", team.admin_key, {"billing_contacts": [viewer]})
    assert set_.status_code == 200 and set_.json()["billing_contacts"] == [viewer]
    contacts = await pool.fetch("SELECT ledger_money_contacts($1) AS email", team.workspace_id)
    assert sorted(r["email"] for r in contacts) == sorted([team.emails["OWNER"].lower(), team.emails["VIEWER"].lower()])

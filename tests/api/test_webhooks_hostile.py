"""Hostile and mistaken webhook requests: each a 4xx in OpenAI's error shape with nothing written,
private targets refused unless the operator allows them, another organization's webhook a 404, and
the roles' rights kept."""

from __future__ import annotations

import asyncio
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
        {"name": "x", "url": "HTTP://[::7f00:1]/", "events": ["*"]},
        {"name": "x", "url": "http://[64:ff9b::7f00:1]/", "events": ["*"]},
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
        for _ in range(400):  # the attempt is logged once the receiver's answer came back
            logged = call(lenient, "GET", f"{ORG}/webhooks/{hook}/deliveries", ours.admin_key).json()["data"]
            if logged:
                break
            await asyncio.sleep(0.05)
        delivery = logged[0]
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
        assert actions == [
            "webhook.created",
            "webhook.test",
            "webhook.replay",
            "webhook.deactivated",
            "webhook.deleted",
        ]
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


async def test_digits_that_are_not_ascii_are_404s_and_400s_not_500s(pool, lenient):
    team = await make_team(pool)
    made = call(lenient, "POST", f"{ORG}/webhooks", team.admin_key,
                {"name": "n", "url": "http://127.0.0.1:9/", "events": ["*"]}).json()  # fmt: skip
    assert (
        call(lenient, "GET", f"{ORG}/webhooks/{made['id']}/deliveries?before=%C2%B2", team.admin_key).status_code == 400
    )
    replay = call(lenient, "POST", f"{ORG}/webhooks/{made['id']}/deliveries/%C2%B2/replay", team.admin_key)
    assert replay.status_code == 404
    assert call(lenient, "GET", f"{ORG}/audit_logs?after=%C2%B2", team.admin_key).status_code == 400
    assert call(lenient, "POST", f"{ORG}/webhooks/{made['id']}", team.admin_key,
                {"url": "Http://127.0.0.1:9/x"}).json()["url"] == "http://127.0.0.1:9/x"  # fmt: skip


async def test_tests_are_limited_and_caps_hold_under_concurrent_creates(pool, lenient):
    team = await make_team(pool)
    made = call(lenient, "POST", f"{ORG}/webhooks", team.admin_key,
                {"name": "n", "url": "http://127.0.0.1:9/", "events": ["balance.low"]}).json()  # fmt: skip
    codes = [call(lenient, "POST", f"{ORG}/webhooks/{made['id']}/test", team.admin_key).status_code for _ in range(11)]
    assert codes == [202] * 10 + [429]
    headers = {"Authorization": f"Bearer {team.admin_key}"}
    async with httpx.AsyncClient(base_url=lenient.url, headers=headers, timeout=60) as client:
        body = {"name": "n", "url": "http://127.0.0.1:9/", "events": ["balance.low"]}
        answers = await asyncio.gather(*(client.post(f"{ORG}/webhooks", json=body) for _ in range(30)))
    assert sorted({a.status_code for a in answers}) == [201, 409]
    assert await pool.fetchval("SELECT count(*) FROM webhooks") == 20


async def test_ids_of_another_organization_and_loose_numbers_are_refused(pool, lenient):
    ours, theirs = await make_team(pool), await make_team(pool)
    project = call(lenient, "POST", f"{ORG}/projects", theirs.admin_key, {"name": "theirs"}).json()
    body = {"name": "n", "url": "http://127.0.0.1:9/", "events": ["*"], "project_ids": [project["id"]]}
    foreign = call(lenient, "POST", f"{ORG}/webhooks", ours.admin_key, body)
    assert foreign.status_code == 400 and foreign.json()["error"]["param"] == "project_ids"
    budget = call(lenient, "POST", f"{ORG}/budgets", theirs.admin_key,
                  {"scope": {"type": "workspace"}, "amount": "5", "period": "monthly"}).json()  # fmt: skip
    wanted = {"name": "r", "condition_type": "budget_threshold", "threshold": "50", "budget_id": budget["id"]}
    rule = call(lenient, "POST", f"{ORG}/alert_rules", ours.admin_key, wanted)
    assert rule.status_code == 400 and rule.json()["error"]["param"] == "budget_id"
    for loose in ["1_000", "\u0663", "1e3", " +5"]:
        answer = call(lenient, "POST", f"{ORG}/notification_settings", ours.admin_key, {"low_balance_threshold": loose})
        assert answer.status_code == 400, loose
    for bad in [{"name": "e", "type": "email", "target": "alice,bob@example.com"},
                {"name": "e", "type": "email", "target": "root:;x@example.com"}]:  # fmt: skip
        assert call(lenient, "POST", f"{ORG}/notification_channels", ours.admin_key, bad).status_code == 400
    lenient_admin = lenient.admin("POST", f"/admin/users/{ours.workspace_id}/credits",
                                  json={"amount": "1", "transaction_type": "bonus", "priority": True})  # fmt: skip
    assert lenient_admin.status_code == 400

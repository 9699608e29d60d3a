"""Signed outgoing webhooks and money emails through the service: an owner's admin key manages
them, traffic and purchases cause events in their own transactions, a real receiver verifies each
delivery with the `standardwebhooks` library, and owners get one email per crossing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from ledger.money import credits
from tests.accounts.helpers import make_team, outbox_messages
from tests.fake_receivers import WebhookReceiver

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    made = WebhookReceiver().start()
    yield made
    made.stop()


@pytest.fixture
def service(start_service, upstreams, tmp_path):
    return start_service(
        upstreams,
        webhook_allow_private_targets=True,
        notify_interval_seconds=0.05,
        mail_outbox_dir=tmp_path / "outbox",
    )


def make_webhook(service: Any, team: Any, receiver: WebhookReceiver, events: list[str], **more: Any) -> dict[str, Any]:
    made = call(
        service,
        "POST",
        f"{ORG}/webhooks",
        team.admin_key,
        {"name": "ops", "url": receiver.url, "events": events, **more},
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    return dict(made.json())


def project_key(service: Any, team: Any, name: str = "p") -> tuple[str, str]:
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": name}).json()
    made = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {})
    assert made.status_code == 201, made.text
    return project["id"], made.json()["value"]


async def test_low_balance_is_told_once_by_signed_webhook_and_by_email(pool, service, receiver, tmp_path):
    team = await make_team(pool, credits_="10")
    hook = make_webhook(service, team, receiver, ["balance.low", "request.completed"])
    assert hook["secret"].startswith("whsec_") and hook["enabled"]
    # the secret is shown once: never again, and never stored in plaintext
    assert "secret" not in call(service, "GET", f"{ORG}/webhooks/{hook['id']}", team.admin_key).json()
    stored = await pool.fetchrow("SELECT * FROM webhooks WHERE id = $1", uuid.UUID(hook["id"]))
    assert hook["secret"].encode() not in b"".join(str(v).encode() for v in dict(stored).values())

    settings = call(service, "GET", f"{ORG}/notification_settings", team.admin_key).json()
    spendable = Decimal(settings["spendable"])
    threshold = spendable - Decimal("0.000001")  # the first charged request crosses it
    changed = call(
        service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": str(threshold)}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["low_balance_threshold"] == str(threshold)

    _, key = project_key(service, team)
    client = service.client(key)
    for _ in range(4):
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)

    low = receiver.wait_for("balance.low")
    completed = receiver.wait_for("request.completed", 4)
    assert all(r.verified_with == receiver.secrets for r in [*low, *completed])
    payload = low[0].payload
    assert payload["data"]["threshold"] == str(threshold)
    assert Decimal(payload["data"]["spendable"]) < threshold
    assert low[0].headers["webhook-id"].startswith("msg_")
    # each delivery is one attempt, logged with what was sent and answered
    # each attempt is logged once its answer came back: wait for the fifth record
    for _ in range(400):
        deliveries = call(service, "GET", f"{ORG}/webhooks/{hook['id']}/deliveries", team.admin_key).json()["data"]
        if len(deliveries) >= 5:
            break
        await asyncio.sleep(0.05)
    assert len(deliveries) == 5 and all(d["success"] and d["response_status"] == 200 for d in deliveries)
    assert {d["event_type"] for d in deliveries} == {"balance.low", "request.completed"}

    # one email to the owner for the crossing, none per request after it
    outbox = tmp_path / "outbox"
    for _ in range(200):
        if outbox_messages(outbox):
            break
        await asyncio.sleep(0.05)
    mails = [m for m in outbox_messages(outbox) if "balance low" in m]
    assert len(mails) == 1 and team.emails["OWNER"] in mails[0]
    assert len(receiver.of_type("balance.low")) == 1

    # buying back above the threshold re-arms it: the next fall is told again
    await credits.add_user_credits(pool, team.workspace_id, "5", "purchase", f"pi_{uuid.uuid4().hex}")
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)  # still above: nothing
    spendable = Decimal(call(service, "GET", f"{ORG}/notification_settings", team.admin_key).json()["spendable"])
    assert spendable > threshold
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)
    assert len(receiver.of_type("balance.low")) == 1
    new = str(spendable - Decimal("0.000001"))
    call(service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": new})
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)
    assert len(receiver.wait_for("balance.low", 2)) == 2


async def test_a_threshold_set_above_what_is_left_tells_at_once_and_bad_ones_are_refused(pool, service, receiver):
    team = await make_team(pool, credits_="1")
    make_webhook(service, team, receiver, ["balance.low"])
    for bad in ["0", "-1", "abc", "1e20", "0.0000001", "NaN", "Infinity", ""]:
        refused = call(service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["param"] == "low_balance_threshold"
    assert (
        await pool.fetchval("SELECT low_balance_threshold FROM user_credits WHERE user_id = $1", team.workspace_id)
        is None
    )
    told = call(service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": "1000000"})
    assert told.status_code == 200
    assert receiver.wait_for("balance.low")[0].payload["data"]["on_setting"] is True
    off = call(service, "POST", f"{ORG}/notification_settings", team.admin_key, {"low_balance_threshold": None})
    assert off.json()["low_balance_threshold"] is None
    audited = await pool.fetch(
        "SELECT action FROM audit_logs WHERE workspace_id = $1 AND resource_type = 'wallet'", team.workspace_id
    )
    assert len(audited) == 2


async def test_every_event_but_request_completed_by_star_and_project_filters(pool, service, receiver):
    team = await make_team(pool, credits_="10")
    project_a, key_a = project_key(service, team, "a")
    _, key_b = project_key(service, team, "b")
    make_webhook(service, team, receiver, ["*"], project_ids=[project_a])
    everything = WebhookReceiver().start()
    try:
        make_webhook(service, team, everything, ["*"])
        service.client(key_a).chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)
        service.client(key_b).chat.completions.create(model="gpt-4", messages=HI, max_tokens=20)
        await credits.add_user_credits(pool, team.workspace_id, "3", "purchase", f"pi_{uuid.uuid4().hex}")
        everything.wait_for("credits.purchased")
        with pytest.raises(openai.NotFoundError):
            service.client(key_b).chat.completions.create(model="no-such-model", messages=HI)
        assert everything.of_type("request.completed") == []  # '*' never includes it
        # a project-filtered endpoint gets only events of its projects (a purchase has none)
        assert receiver.of_type("credits.purchased") == []
    finally:
        everything.stop()


async def test_budget_thresholds_and_refusals_are_told_once_each(pool, service, receiver, tmp_path):
    team = await make_team(pool, credits_="100")
    project_id, key = project_key(service, team)
    client = service.client(key)
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=50)
    cost = await pool.fetchval("SELECT credits_used FROM llm_usage_log ORDER BY id DESC LIMIT 1")
    make_webhook(service, team, receiver, ["budget.threshold", "budget.exceeded", "rate_limit.hit"])
    budget = call(
        service,
        "POST",
        f"{ORG}/budgets",
        team.admin_key,
        {
            "scope": {"type": "project", "id": project_id},
            "amount": str(cost * 2),
            "period": "daily",
            "alert_thresholds": [50, 100],
        },
    ).json()
    refused = 0
    for _ in range(6):
        try:
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=50)
        except openai.APIStatusError as exc:
            assert exc.status_code == 402
            refused += 1
    assert refused >= 3
    thresholds = receiver.wait_for("budget.threshold", 2)
    assert sorted(r.payload["data"]["threshold"] for r in thresholds) == [50, 100]
    assert all(r.payload["data"]["budget_id"] == budget["id"] for r in thresholds)
    exceeded = receiver.wait_for("budget.exceeded")
    # rate limits: one rate_limit.hit per limit per minute, however many requests it refuses
    call(service, "POST", f"{ORG}/budgets/{budget['id']}", team.admin_key, {"amount": "1000"})
    limit = call(
        service,
        "POST",
        f"{ORG}/rate_limits",
        team.admin_key,
        {"scope": {"type": "project", "id": project_id}, "requests": 1, "window_seconds": 3600},
    ).json()
    for _ in range(4):
        with contextlib.suppress(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    hit = receiver.wait_for("rate_limit.hit")
    assert hit[0].payload["data"]["rate_limit_id"] == limit["id"]
    await asyncio.sleep(0.5)
    assert len(receiver.of_type("rate_limit.hit")) == 1
    assert len(receiver.of_type("budget.exceeded")) == len(exceeded) == 1
    assert len(receiver.of_type("budget.threshold")) == 2
    # the owners' emails: one per threshold and one for the budget used up
    outbox = tmp_path / "outbox"
    for _ in range(200):
        if len(outbox_messages(outbox)) >= 3:
            break
        await asyncio.sleep(0.05)
    subjects = sorted(m.split("\n")[1] for m in outbox_messages(outbox))
    assert len(subjects) == 3, subjects
    assert sum("budget at" in s for s in subjects) == 2 and sum("budget reached" in s for s in subjects) == 1

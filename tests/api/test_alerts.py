"""Alert rules, events and channels through the service: every channel kind is verified by the
code in its test message before it is used; an error-rate rule opens one alert when requests fail
(told to Slack, Discord, Teams, PagerDuty, a signed webhook and email, each in its documented
shape), is acknowledged, and resolves (PagerDuty under the same dedup key) when requests succeed
again; a provider going down and up is told to webhooks; a budget threshold opens its alert on the
settle path."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from ledger.money.maintenance import run_once
from tests.accounts.helpers import make_team, outbox_messages
from tests.fake_receivers import ChatServices, WebhookReceiver

ORG = "/v1/organization"
HI = [{"role": "user", "content": "Hi"}]
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def call(service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


@pytest.fixture
def chat() -> Iterator[ChatServices]:
    made = ChatServices().start()
    yield made
    made.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    made = WebhookReceiver().start()
    yield made
    made.stop()


@pytest.fixture
def service(start_service, upstreams, tmp_path, chat):
    return start_service(
        upstreams,
        webhook_allow_private_targets=True,
        notify_interval_seconds=0.05,
        maintenance_interval_seconds=0,  # the test runs the evaluation itself
        mail_outbox_dir=tmp_path / "outbox",
        pagerduty_events_url=f"{chat.base}/v2/enqueue",
    )


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.05)
    return found


CODE = re.compile(r"enter the code (\d{6})")


def code_in(text: str) -> str:
    found = CODE.search(text)
    assert found, text
    return found.group(1)


async def test_an_error_rate_alert_opens_once_is_told_everywhere_and_resolves(
    pool, service, chat, receiver, upstreams, tmp_path
):
    team = await make_team(pool, credits_="100")
    made = call(service, "POST", f"{ORG}/webhooks", team.admin_key,
                {"name": "ops", "url": receiver.url, "events": ["alert.triggered"]})  # fmt: skip
    receiver.secrets.append(made.json()["secret"])
    targets = {
        "slack": f"{chat.base}/services/T000/B000/XXXX",
        "discord": f"{chat.base}/api/webhooks/123/abc",
        "teams": f"{chat.base}/workflows/abc/triggers/manual/paths/invoke",
        "pagerduty": ROUTING_KEY,
        "email": "oncall@example.com",
    }
    channel_ids = {}
    for kind, target in targets.items():
        created = call(service, "POST", f"{ORG}/notification_channels", team.admin_key,
                       {"name": kind, "type": kind, "target": target})  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json()["verified"] is False and target not in created.text  # only a hint
        channel_ids[kind] = created.json()["id"]
    # each test message arrives in its service's shape, with the code to enter back
    wait_for(lambda: chat.slack and chat.discord and chat.teams and len(chat.pagerduty) >= 2)
    outbox = tmp_path / "outbox"
    wait_for(lambda: outbox.exists() and outbox_messages(outbox))
    codes = {
        "slack": code_in(chat.slack[0]["text"]),
        "discord": code_in(chat.discord[0]["content"]),
        "teams": code_in(chat.teams[0]["attachments"][0]["content"]["body"][1]["text"]),
        "pagerduty": code_in(chat.pagerduty[0]["payload"]["summary"]),
        "email": code_in(outbox_messages(outbox)[0]),
    }
    assert [e["event_action"] for e in chat.pagerduty[:2]] == ["trigger", "resolve"]  # the test incident closes
    wrong = call(service, "POST", f"{ORG}/notification_channels/{channel_ids['slack']}/verify", team.admin_key,
                 {"code": "000000" if codes["slack"] != "000000" else "111111"})  # fmt: skip
    assert wrong.status_code == 400
    for kind, code in codes.items():
        verified = call(service, "POST", f"{ORG}/notification_channels/{channel_ids[kind]}/verify", team.admin_key,
                        {"code": code})  # fmt: skip
        assert verified.status_code == 200 and verified.json()["verified"] is True, verified.text
    rule = call(service, "POST", f"{ORG}/alert_rules", team.admin_key,
                {"name": "errors", "condition_type": "error_rate", "threshold": "50", "window_seconds": 60,
                 "min_requests": 3, "severity": "critical", "channel_ids": list(channel_ids.values())})  # fmt: skip
    assert rule.status_code == 201, rule.text

    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    client = service.client(key)
    for fake in upstreams.values():  # every provider of the model fails: no fallback serves it
        fake.status = 500
    for _ in range(4):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert (await run_once(pool)).alerts_opened == 1
    assert (await run_once(pool)).alerts_opened == 0  # open already: once
    counts = (len(chat.slack), len(chat.discord), len(chat.teams))
    wait_for(lambda: (len(chat.slack), len(chat.discord), len(chat.teams)) == (2, 2, 2) and len(chat.pagerduty) == 3)
    assert counts[0] >= 1
    assert "errors" in chat.slack[1]["text"] and "critical" in chat.slack[1]["text"]
    trigger = chat.pagerduty[2]
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "critical"
    [told] = receiver.wait_for("alert.triggered")
    assert told.verified_with and told.payload["data"]["condition_type"] == "error_rate"
    events = call(service, "GET", f"{ORG}/alert_events?status=open", team.admin_key).json()["data"]
    assert len(events) == 1 and events[0]["status"] == "open"
    acked = call(service, "POST", f"{ORG}/alert_events/{events[0]['id']}/acknowledge", team.admin_key)
    assert acked.status_code == 200
    # requests succeed again: the rate falls, the alert resolves, PagerDuty closes the same incident
    for fake in upstreams.values():
        fake.status = 200
    for _ in range(8):
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert (await run_once(pool)).alerts_resolved == 1
    wait_for(lambda: len(chat.pagerduty) == 4 and len(chat.slack) == 3)
    resolve = chat.pagerduty[3]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    assert "Resolved" in chat.slack[2]["text"]
    # 5 channels, open and resolve: each counted once its service took it
    state = wait_for(
        lambda: (
            (found := call(service, "GET", f"{ORG}/alert_events", team.admin_key).json()["data"][0])
            and found["notifications_sent"] == 10
            and found
        )
    )
    assert state["status"] == "resolved"
    assert chat.refused == []


async def test_an_unverified_or_failing_channel_and_a_provider_going_down_and_up(
    pool, service, chat, receiver, upstreams
):
    team = await make_team(pool, credits_="100")
    made = call(service, "POST", f"{ORG}/webhooks", team.admin_key,
                {"name": "ops", "url": receiver.url, "events": ["provider.down", "provider.up"]})  # fmt: skip
    receiver.secrets.append(made.json()["secret"])
    unverified = call(service, "POST", f"{ORG}/notification_channels", team.admin_key,
                      {"name": "s", "type": "slack", "target": f"{chat.base}/services/T/B/X"}).json()  # fmt: skip
    wait_for(lambda: chat.slack)
    rule = call(service, "POST", f"{ORG}/alert_rules", team.admin_key,
                {"name": "openai down", "condition_type": "provider_down", "provider": "openai", "threshold": "100",
                 "window_seconds": 60, "min_requests": 2, "cooldown_secs": 0,
                 "channel_ids": [unverified["id"]]})  # fmt: skip
    assert rule.status_code == 201, rule.text
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    client = service.client(key)
    for fake in upstreams.values():
        fake.status = 503
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert (await run_once(pool)).alerts_opened == 1
    [down] = receiver.wait_for("provider.down")
    assert down.payload["data"]["provider"] == "openai"
    await asyncio.sleep(0.3)
    assert len(chat.slack) == 1  # the test message only: an unverified channel gets no alert
    for fake in upstreams.values():
        fake.status = 200
    await pool.execute("UPDATE llm_usage_log SET created_at = created_at - interval '2 minutes'")
    for _ in range(2):
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    assert (await run_once(pool)).alerts_resolved == 1
    receiver.wait_for("provider.up")


async def test_a_budget_threshold_rule_opens_on_the_settle_path(pool, service, receiver):
    team = await make_team(pool, credits_="100")
    made = call(service, "POST", f"{ORG}/webhooks", team.admin_key,
                {"name": "ops", "url": receiver.url, "events": ["alert.triggered"]})  # fmt: skip
    receiver.secrets.append(made.json()["secret"])
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "p"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    client = service.client(key)
    client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    cost = await pool.fetchval("SELECT credits_used FROM llm_usage_log")
    budget = call(service, "POST", f"{ORG}/budgets", team.admin_key,
                  {"scope": {"type": "project", "id": project["id"]}, "amount": str(cost * 4), "period": "monthly",
                   "hard": False, "alert_thresholds": [50, 100]}).json()  # fmt: skip
    rule = call(service, "POST", f"{ORG}/alert_rules", team.admin_key,
                {"name": "half the budget", "condition_type": "budget_threshold", "threshold": "50",
                 "budget_id": budget["id"]})  # fmt: skip
    assert rule.status_code == 201, rule.text
    for _ in range(2):
        client.chat.completions.create(model="gpt-4", messages=HI, max_tokens=5)
    [opened] = receiver.wait_for("alert.triggered")  # no maintenance pass ran
    assert opened.payload["data"]["condition_type"] == "budget_threshold"


async def test_bad_channels_and_rules_are_refused_and_other_organizations_see_404s(pool, start_service, service):
    strict = start_service()
    team, other = await make_team(pool), await make_team(pool)
    for body in [
        {"name": "s", "type": "slack", "target": "https://example.com/services/x"},  # not Slack's host
        {"name": "s", "type": "slack", "target": "http://hooks.slack.com/services/x"},  # not https
        {"name": "s", "type": "discord", "target": "https://169.254.169.254/api/webhooks/1/x"},
        {"name": "p", "type": "pagerduty", "target": "short"},
        {"name": "e", "type": "email", "target": "not an email"},
        {"name": "x", "type": "sms", "target": "+15555550100"},
        {"name": "", "type": "email", "target": "a@example.com"},
    ]:
        refused = call(strict, "POST", f"{ORG}/notification_channels", team.admin_key, body)
        assert refused.status_code == 400, (body, refused.text)
    theirs = call(service, "POST", f"{ORG}/notification_channels", other.admin_key,
                  {"name": "e", "type": "email", "target": "a@example.com"}).json()  # fmt: skip
    for body in [
        {"name": "r", "condition_type": "error_rate", "threshold": "x"},
        {"name": "r", "condition_type": "cpu", "threshold": "1"},
        {"name": "r", "condition_type": "provider_down", "threshold": "50"},
        {"name": "r", "condition_type": "error_rate", "threshold": "5", "window_seconds": 5},
        {"name": "r", "condition_type": "error_rate", "threshold": "5", "channel_ids": [theirs["id"]]},
    ]:
        refused = call(service, "POST", f"{ORG}/alert_rules", team.admin_key, body)
        assert refused.status_code == 400, (body, refused.text)
    for method, path in [
        ("GET", f"{ORG}/notification_channels/{theirs['id']}"),
        ("DELETE", f"{ORG}/notification_channels/{theirs['id']}"),
        ("POST", f"{ORG}/notification_channels/{theirs['id']}/test"),
    ]:
        assert call(service, method, path, team.admin_key).status_code == 404
    assert await pool.fetchval("SELECT count(*) FROM alert_rules") == 0
    assert await pool.fetchval("SELECT count(*) FROM notification_channels") == 1

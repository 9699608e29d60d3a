"""`ledger webhooks` and `ledger notifications`: the operator manages a workspace's webhooks and
low-balance threshold; each change is in the audit log as the operator's, and the secret is
printed once and stored encrypted."""

from __future__ import annotations

import base64
import json
import os

from tests.accounts.helpers import make_team
from tests.test_cli import ledger


async def test_the_operator_creates_lists_switches_and_deletes_webhooks(pool, database_url):
    team = await make_team(pool)
    ws = str(team.workspace_id)
    env = {
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    made = ledger("webhooks", "create", "--workspace", ws, "--name", "ops", "--url", "http://127.0.0.1:9/h",
                  "--events", "balance.low,credits.purchased", "--json", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["balance.low", "credits.purchased"]
    assert hook["secret"].encode() not in bytes(await pool.fetchval("SELECT secret_encrypted FROM webhooks"))
    listed = json.loads(ledger("webhooks", "list", "--workspace", ws, "--json", env=env).stdout)
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    off = ledger("webhooks", "disable", "--workspace", ws, hook["id"], "--json", env=env)
    assert off.returncode == 0 and json.loads(off.stdout)["is_active"] is False
    refused = ledger("webhooks", "create", "--workspace", ws, "--name", "x", "--url", "http://10.0.0.1/",
                     env={**env, "LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "false"})  # fmt: skip
    assert refused.returncode != 0 and "private" in refused.stderr
    low = ledger("notifications", "low-balance", "--workspace", ws, "2.5", "--json", env=env)
    assert low.returncode == 0, low.stderr
    assert json.loads(low.stdout)["low_balance_threshold"] == "2.500000"
    assert ledger("webhooks", "deliveries", "--workspace", ws, hook["id"], "--json", env=env).returncode == 0
    gone = ledger("webhooks", "delete", "--workspace", ws, hook["id"], "--json", env=env)
    assert gone.returncode == 0
    actions = [r["action"] for r in await pool.fetch(
        "SELECT action FROM audit_logs WHERE resource_type IN ('webhook', 'wallet') AND actor_type = 'operator'"
        " ORDER BY id")]  # fmt: skip
    assert actions == ["webhook.created", "webhook.deactivated", "wallet.updated", "webhook.deleted"]


async def test_the_operator_reads_channels_rules_alerts_and_auto_top_up_and_resolves_an_alert(pool, database_url):
    from tests.test_ops import rows

    team = await make_team(pool)
    ws = str(team.workspace_id)
    env = {"LEDGER_DATABASE_URL": database_url}
    rule = await pool.fetchval(
        "INSERT INTO alert_rules (workspace_id, name, condition_type, threshold) VALUES ($1, 'spend', 'spend_rate', 0)"
        " RETURNING id", team.workspace_id)  # fmt: skip
    opened = await pool.fetchval("SELECT ledger_open_alert(r, 1) FROM alert_rules r WHERE id = $1", rule)
    assert opened is not None
    [alert] = rows(database_url, "open_alerts")
    assert alert[1:4] == ["spend", "spend_rate", "warning"]
    listed = json.loads(ledger("alerts", "list", "--workspace", ws, "--open", "--json", env=env).stdout)
    assert [a["id"] for a in listed] == [str(opened)]
    assert json.loads(ledger("alerts", "rules", "--workspace", ws, "--json", env=env).stdout)[0]["name"] == "spend"
    assert ledger("notifications", "channels", "--workspace", ws, "--json", env=env).stdout.strip() == "[]"
    done = ledger("alerts", "resolve", "--workspace", ws, str(opened), "--note", "checked", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert rows(database_url, "open_alerts") == []
    again = ledger("alerts", "resolve", "--workspace", ws, str(opened), env=env)
    assert again.returncode != 0 and "no open alert" in again.stderr
    shown = json.loads(ledger("auto-top-up", "show", "--workspace", ws, "--json", env=env).stdout)
    assert shown == {"settings": None, "recent": []}
    off = ledger("auto-top-up", "off", "--workspace", ws, "--json", env=env)
    assert off.returncode == 0 and json.loads(off.stdout)["enabled"] is False

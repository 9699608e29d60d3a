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

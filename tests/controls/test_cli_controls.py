"""`ledger budgets` and `ledger rate-limits`: the operator sets, lists and deletes a workspace's
controls; each change is in the audit log as the operator's."""

from __future__ import annotations

import json
import uuid

from tests.controls.sql_requests import make_wallet
from tests.test_cli import ledger


async def test_the_operator_sets_lists_and_deletes_budgets_and_rate_limits(pool, database_url):
    wallet = await make_wallet(pool)
    env = {"LEDGER_DATABASE_URL": database_url}
    ws = str(wallet.workspace_id)
    project = str(wallet.project_id)
    made = ledger("budgets", "create", "--workspace", ws, "--scope", "project", "--scope-id", project,
                  "--amount", "20", "--period", "monthly", "--alert-thresholds", "75,100", "--json",
                  env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    budget = json.loads(made.stdout)
    assert (budget["amount"], budget["alert_thresholds"], budget["hard"]) == ("20.000000", [75, 100], True)
    limit = ledger("rate-limits", "create", "--workspace", ws, "--scope", "key", "--scope-id", str(wallet.key_id),
                   "--requests", "60", "--window-seconds", "60", "--json", env=env)  # fmt: skip
    assert limit.returncode == 0, limit.stderr
    listed = ledger("budgets", "list", "--workspace", ws, "--json", env=env)
    assert budget["id"] in listed.stdout
    assert json.loads(ledger("rate-limits", "list", "--workspace", ws, "--json", env=env).stdout)[0]["requests"] == 60

    bad = ledger("budgets", "create", "--workspace", ws, "--amount", "lots", env=env)
    assert bad.returncode != 0 and "amount" in bad.stderr
    elsewhere = ledger("rate-limits", "create", "--workspace", ws, "--scope", "project", "--scope-id",
                       str(uuid.uuid4()), "--max-concurrent", "2", env=env)  # fmt: skip
    assert elsewhere.returncode != 0 and "not in workspace" in elsewhere.stderr

    assert ledger("budgets", "delete", "--workspace", ws, budget["id"], env=env).returncode == 0
    assert ledger("budgets", "delete", "--workspace", ws, budget["id"], env=env).returncode != 0
    actors = await pool.fetch(
        "SELECT action, actor_type FROM audit_logs WHERE resource_type IN ('budget', 'rate_limit') ORDER BY id"
    )
    assert [(r["action"], r["actor_type"]) for r in actors] == [
        ("budget.created", "operator"), ("rate_limit.created", "operator"), ("budget.deleted", "operator")
    ]  # fmt: skip


async def test_a_workspace_has_at_most_100_budgets(pool):
    from ledger.accounts.actor import OPERATOR, acting
    from ledger.controls import budgets
    from ledger.controls.budgets import BudgetSpec
    from ledger.errors import TooManyControls

    wallet = await make_wallet(pool)
    await pool.execute(
        """INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period)
           SELECT $1::uuid, 'end_user', 'user' || n, 5, 'daily' FROM generate_series(1, 100) n""",
        wallet.workspace_id,
    )
    async with acting(pool, OPERATOR) as conn:
        try:
            await budgets.create_budget(
                conn, wallet.workspace_id, BudgetSpec("workspace", None, None, "5", "daily"), None
            )
        except TooManyControls as refused:
            assert "100 budgets" in refused.message
        else:
            raise AssertionError("a 101st budget was made")

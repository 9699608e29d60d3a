"""`ledger workspaces create`: the operator starts a team; the owner's invitation is emailed."""

from __future__ import annotations

import json
import re
import uuid

from tests.accounts.helpers import outbox_messages
from tests.test_cli import ledger


async def test_the_operator_starts_a_team_with_an_invited_owner_and_a_first_admin_key(pool, database_url, tmp_path):
    env = {"LEDGER_DATABASE_URL": database_url, "LEDGER_MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
           "LEDGER_PUBLIC_URL": "https://billing.example.com"}  # fmt: skip
    made = ledger("workspaces", "create", "--name", "Acme", "--owner-email", "boss@example.com", "--json", env=env)
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    workspace_id = uuid.UUID(shown["workspace_id"])
    assert shown["admin_key"].startswith("sk-lg-admin-")
    assert await pool.fetchval("SELECT kind FROM workspaces WHERE id = $1", workspace_id) == "team"
    assert (
        await pool.fetchval("SELECT count(*) FROM projects WHERE workspace_id = $1 AND is_default", workspace_id) == 1
    )
    invite = await pool.fetchrow("SELECT email, role FROM workspace_invitations WHERE workspace_id = $1", workspace_id)
    assert (invite["email"], invite["role"]) == ("boss@example.com", "OWNER")
    [mail] = outbox_messages(tmp_path / "outbox")
    assert "To: boss@example.com" in mail
    assert re.search(r"https://billing\.example\.com/dashboard/invitations/accept\?token=inv_\S+", mail)
    # the admin key is stored hashed, and the operator's act is in the audit log
    assert shown["admin_key"] not in str(await pool.fetch("SELECT * FROM admin_api_keys"))
    actors = await pool.fetch("SELECT DISTINCT actor_type FROM audit_logs WHERE workspace_id = $1", workspace_id)
    assert {row["actor_type"] for row in actors} == {"operator"}
    listed = ledger("workspaces", "list", "--json", env=env)
    assert shown["workspace_id"] in listed.stdout


def test_a_bad_owner_email_is_refused_and_nothing_is_made(database_url, tmp_path):
    env = {"LEDGER_DATABASE_URL": database_url, "LEDGER_MAIL_OUTBOX_DIR": str(tmp_path / "outbox")}
    made = ledger("workspaces", "create", "--name", "Acme", "--owner-email", "not-an-email", env=env)
    assert made.returncode == 1 and "--owner-email" in made.stderr
    assert not (tmp_path / "outbox").exists()

"""The administration API (/v1/organization/...): OpenAI's shapes, admin keys only, every id
checked against the caller's workspace, every change in the audit log."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.accounts.helpers import make_team, outbox_messages

ORG = "/v1/organization"


def call(
    service: Any, method: str, path: str, key: str, body: dict[str, Any] | None = None, **params: Any
) -> httpx.Response:
    return httpx.request(
        method, f"{service.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body, params=params, timeout=30
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def service(start_service, upstreams, outbox):
    return start_service(upstreams, mail_outbox_dir=outbox)


async def test_a_project_key_made_by_an_admin_key_bills_the_teams_wallet(pool, service):
    team = await make_team(pool, credits_="100")
    made = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "Search"})
    assert made.status_code == 201, made.text
    project = made.json()
    assert (project["object"], project["name"], project["status"]) == ("organization.project", "Search", "active")

    created = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {"name": "ci"})
    assert created.status_code == 201, created.text
    key = created.json()["value"]
    answer = service.client(key).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content

    row = await pool.fetchrow("SELECT user_id, project_id, credits_used FROM llm_usage_log")
    assert (row["user_id"], str(row["project_id"])) == (team.workspace_id, project["id"])
    wallet = await pool.fetchrow("SELECT * FROM user_credits WHERE user_id = $1", team.workspace_id)
    spent = wallet["credits_used_this_month"] + (Decimal("100") - wallet["balance"])  # the allowance first
    assert row["credits_used"] > 0 and spent == row["credits_used"]

    listed = call(service, "GET", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key).json()
    assert listed["object"] == "list" and [k["id"] for k in listed["data"]] == [created.json()["id"]]
    assert "value" not in listed["data"][0] and key not in str(listed)


async def test_lists_page_with_openai_cursors(pool, service):
    team = await make_team(pool)
    for n in range(5):
        assert call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": f"p{n}"}).status_code == 201
    first = call(service, "GET", f"{ORG}/projects", team.admin_key, limit=4).json()
    assert first["has_more"] is True and len(first["data"]) == 4
    assert first["first_id"] == first["data"][0]["id"] and first["last_id"] == first["data"][-1]["id"]
    rest = call(service, "GET", f"{ORG}/projects", team.admin_key, limit=4, after=first["last_id"]).json()
    assert rest["has_more"] is False and len(rest["data"]) == 2  # 5 made + the default project
    names = [p["name"] for p in first["data"] + rest["data"]]
    assert sorted(names) == sorted(["Default project", "p0", "p1", "p2", "p3", "p4"])


async def test_another_workspaces_ids_are_the_same_404_as_unknown_ones(pool, service):
    ours, theirs = await make_team(pool), await make_team(pool, roles=("OWNER", "DEVELOPER"))
    their_project = call(service, "POST", f"{ORG}/projects", theirs.admin_key, {"name": "x"}).json()
    their_key = call(service, "POST", f"{ORG}/projects/{their_project['id']}/api_keys", theirs.admin_key, {}).json()
    invite = call(service, "POST", f"{ORG}/invites", theirs.admin_key, {"email": "a@example.com", "role": "viewer"})
    paths = [
        ("GET", f"{ORG}/projects/{their_project['id']}"),
        ("POST", f"{ORG}/projects/{their_project['id']}/archive"),
        ("GET", f"{ORG}/projects/{their_project['id']}/api_keys"),
        ("DELETE", f"{ORG}/projects/{their_project['id']}/api_keys/{their_key['id']}"),
        ("GET", f"{ORG}/users/{theirs.people['DEVELOPER']}"),
        ("DELETE", f"{ORG}/users/{theirs.people['DEVELOPER']}"),
        ("GET", f"{ORG}/invites/{invite.json()['id']}"),
        ("DELETE", f"{ORG}/invites/{invite.json()['id']}"),
    ]
    for method, path in paths:
        theirs_answer = call(service, method, path, ours.admin_key)
        unknown = call(service, method, re.sub(r"[0-9a-f-]{36}", str(uuid.uuid4()), path), ours.admin_key)
        garbage = call(service, method, re.sub(r"[0-9a-f-]{36}", "not-an-id", path, count=1), ours.admin_key)
        assert theirs_answer.status_code == unknown.status_code == garbage.status_code == 404, (
            path,
            theirs_answer.text,
        )
        assert theirs_answer.json()["error"]["message"] == unknown.json()["error"]["message"]
    # and nothing of theirs changed
    assert await pool.fetchval("SELECT is_active FROM gateway_api_keys WHERE id = $1", uuid.UUID(their_key["id"]))
    assert (
        await pool.fetchval("SELECT count(*) FROM workspace_members WHERE workspace_id = $1", theirs.workspace_id) == 2
    )


async def test_gateway_keys_cannot_administer_and_admin_keys_cannot_meter(pool, service, make_account):
    team = await make_team(pool, credits_="10")
    account = await make_account(credits_="10")
    refused = call(service, "GET", f"{ORG}/users", account.key)
    assert refused.status_code == 401 and "admin key" in refused.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        service.client(team.admin_key).chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "x"}]
        )
    assert await pool.fetchval("SELECT count(*) FROM credit_holds") == 0


async def test_a_team_gateway_key_reads_but_does_not_manage_the_wallet(pool, service):
    team = await make_team(pool, credits_="10")
    project = call(service, "GET", f"{ORG}/projects", team.admin_key).json()["data"][0]
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
    assert service.get("/v1/credits/balance", key).status_code == 200
    for path, body in [("/v1/keys", {}), ("/v1/credits/checkout", {"package_id": "x"})]:
        answer = service.post(path, key, body)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "permission_denied", path
    assert service.get("/v1/keys", key).status_code == 403


async def test_the_last_owner_cannot_be_demoted_or_removed(pool, service):
    team = await make_team(pool)
    owner = team.people["OWNER"]
    # an admin key acts as ADMIN: it may not touch an owner at all
    assert call(service, "POST", f"{ORG}/users/{owner}", team.admin_key, {"role": "viewer"}).status_code == 403
    from ledger.accounts import workspaces
    from ledger.accounts.actor import OPERATOR, acting
    from ledger.errors import LastOwner

    with pytest.raises(LastOwner):
        async with acting(pool, OPERATOR) as conn:
            await workspaces.change_role(conn, team.workspace_id, owner, "ADMIN")
    with pytest.raises(LastOwner):
        async with acting(pool, OPERATOR) as conn:
            await workspaces.remove_member(conn, team.workspace_id, owner)
    assert await workspaces.role_in(pool, team.workspace_id, owner) == "OWNER"


async def test_an_invite_is_emailed_and_listed_without_its_token(pool, service, outbox):
    team = await make_team(pool)
    made = call(service, "POST", f"{ORG}/invites", team.admin_key, {"email": "dev@example.com", "role": "developer"})
    assert made.status_code == 201, made.text
    invite = made.json()
    assert (invite["object"], invite["status"], invite["role"]) == ("organization.invite", "pending", "developer")
    [mail] = outbox_messages(outbox)
    token = re.search(r"token=(inv_[A-Za-z0-9_-]+)", mail)
    assert token is not None and "dev@example.com" in mail
    assert token.group(1) not in call(service, "GET", f"{ORG}/invites", team.admin_key).text
    stored = await pool.fetchval("SELECT token_hash FROM workspace_invitations")
    assert token.group(1) not in stored
    # an admin key may not invite an owner
    owner = call(service, "POST", f"{ORG}/invites", team.admin_key, {"email": "o@example.com", "role": "owner"})
    assert owner.status_code == 403
    assert call(service, "DELETE", f"{ORG}/invites/{invite['id']}", team.admin_key).json()["deleted"] is True
    assert call(service, "GET", f"{ORG}/invites/{invite['id']}", team.admin_key).json()["status"] == "revoked"


@pytest.mark.parametrize(
    "body",
    [{"email": "not an email", "role": "viewer"}, {"email": "a@example.com", "role": "god"}, {"email": "a\x00@b.c"}],
)
async def test_bad_invites_are_400s_and_write_nothing(pool, service, body):
    team = await make_team(pool)
    answer = call(service, "POST", f"{ORG}/invites", team.admin_key, body)
    assert answer.status_code == 400 and answer.json()["error"]["message"]
    assert await pool.fetchval("SELECT count(*) FROM workspace_invitations") == 0


async def test_every_change_is_in_the_audit_log_with_its_actor(pool, service):
    team = await make_team(pool)
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "Audited"}).json()
    key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {"name": "k"}).json()
    call(service, "DELETE", f"{ORG}/projects/{project['id']}/api_keys/{key['id']}", team.admin_key)
    call(service, "POST", f"{ORG}/projects/{project['id']}", team.admin_key, {"name": "Renamed"})
    call(service, "POST", f"{ORG}/projects/{project['id']}/archive", team.admin_key)

    log = call(service, "GET", f"{ORG}/audit_logs", team.admin_key, limit=100).json()
    mine = [e for e in log["data"] if e["actor"]["type"] == "admin_key"]
    assert [e["type"] for e in reversed(mine)] == [
        "project.created", "api_key.created", "api_key.revoked", "project.updated", "project.archived",
    ]  # fmt: skip
    assert all(e["actor"]["ip_address"] == "127.0.0.1" and e["request_id"].startswith("req_") for e in mine)
    assert key["value"] not in str(log) and "key_hash" not in str(log)
    only = call(service, "GET", f"{ORG}/audit_logs", team.admin_key, **{"event_types[]": "api_key.created"}).json()
    assert [e["type"] for e in only["data"]] == ["api_key.created"]
    # append-only
    import asyncpg

    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("DELETE FROM audit_logs")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("UPDATE audit_logs SET action = 'x'")


async def test_usage_is_filtered_and_grouped_by_project(pool, service):
    team = await make_team(pool, credits_="100")
    made = {}
    for name in ("Alpha", "Beta"):
        project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": name}).json()
        key = call(service, "POST", f"{ORG}/projects/{project['id']}/api_keys", team.admin_key, {}).json()["value"]
        made[name] = (project["id"], key)
    for name, calls in (("Alpha", 2), ("Beta", 1)):
        for _ in range(calls):
            service.client(made[name][1]).chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "Hi"}]
            )
    key = made["Alpha"][1]
    alpha = service.get("/v1/usage", key, project_id=made["Alpha"][0]).json()["data"]
    assert len(alpha) == 2 and {row["project_id"] for row in alpha} == {made["Alpha"][0]}
    assert len(service.get("/v1/usage", key).json()["data"]) == 3
    answer = service.get("/v1/usage/daily", key, group_by="project")
    assert answer.status_code == 200, answer.text
    daily = answer.json()["data"]
    assert sorted((row["project"], row["requests"]) for row in daily) == [("Alpha", 2), ("Beta", 1)]
    assert service.get("/v1/usage", key, project_id="nope").status_code == 400
    assert service.get("/v1/usage/daily", key, group_by="colour").status_code == 400


async def test_audit_time_filters_bound_exactly_and_refuse_nothing_with_a_500(pool, service):
    team = await make_team(pool)
    project = call(service, "POST", f"{ORG}/projects", team.admin_key, {"name": "Timed"}).json()
    created = await pool.fetchval("SELECT created_at FROM audit_logs WHERE resource_id = $1", project["id"])
    moment = created.isoformat()

    def types(**params: str) -> list[str]:
        answer = call(
            service, "GET", f"{ORG}/audit_logs", team.admin_key, **params, **{"resource_ids[]": project["id"]}
        )
        assert answer.status_code == 200, answer.text
        return [event["type"] for event in answer.json()["data"]]

    assert types(**{"effective_at[gte]": moment}) == ["project.created"]
    assert types(**{"effective_at[gt]": moment}) == []
    assert types(**{"effective_at[lte]": moment}) == ["project.created"]
    assert types(**{"effective_at[lt]": moment}) == []
    # the calendar's last instant, a far unix time: answered, never a 500
    assert types(**{"effective_at[gt]": "9999-12-31T23:59:59.999999"}) == []
    assert types(**{"effective_at[lte]": "9999-12-31T23:59:59.999999"}) == ["project.created"]
    assert types(**{"effective_at[gt]": "99999999999"}) == []
    for bad in ({"effective_at[gt]": "yesterday"}, {"after": "9" * 30}, {"limit": "0"}):
        assert call(service, "GET", f"{ORG}/audit_logs", team.admin_key, **bad).status_code == 400, bad

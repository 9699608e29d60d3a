"""Invitations and sessions against hostile use: a token works once, for its own workspace, for
its own email; a member removed mid-session loses access at their next request; gateway-key
sign-in is for personal workspaces only and can be turned off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.accounts import invitations
from ledger.accounts.actor import OPERATOR, acting
from tests.accounts.helpers import PASSWORD, make_person, make_team
from tests.api.web.test_roles import csrf_of, sign_in


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    return found.group(1)


def accept(service: Any, token: str, client: httpx.Client | None = None, password: str = PASSWORD) -> httpx.Response:
    client = client or httpx.Client(base_url=service.url, timeout=30)
    page = f"/dashboard/invitations/accept?token={token}"
    if client.get(page).status_code != 200:
        return client.get(page)
    return client.post(
        "/dashboard/invitations/accept", data={"csrf": form_token(client, page), "token": token, "password": password}
    )


@pytest.fixture
def service(start_service, tmp_path: Path):
    return start_service(mail_outbox_dir=tmp_path / "outbox")


async def test_an_invitation_joins_its_own_workspace_once(pool, service):
    ours, theirs = await make_team(pool), await make_team(pool)
    async with acting(pool, OPERATOR) as conn:
        made = await invitations.invite(conn, ours.workspace_id, "new@example.com", "DEVELOPER", None)
    first = accept(service, made.token)
    assert first.status_code == 303, first.text
    person = await pool.fetchval("SELECT id FROM users WHERE email = 'new@example.com'")
    memberships = await pool.fetch("SELECT workspace_id, role FROM workspace_members WHERE user_id = $1", person)
    assert {(m["workspace_id"], m["role"]) for m in memberships} >= {(ours.workspace_id, "DEVELOPER")}
    assert theirs.workspace_id not in {m["workspace_id"] for m in memberships}
    assert accept(service, made.token).status_code == 404  # once


async def test_revoked_expired_and_forged_invitations_join_nothing(pool, service):
    team = await make_team(pool)
    async with acting(pool, OPERATOR) as conn:
        revoked = await invitations.invite(conn, team.workspace_id, "a@example.com", "VIEWER", None)
        expired = await invitations.invite(conn, team.workspace_id, "b@example.com", "VIEWER", None)
        await invitations.revoke(conn, team.workspace_id, revoked.invitation["id"])
    await pool.execute(
        "UPDATE workspace_invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.invitation["id"],
    )
    for token in (revoked.token, expired.token, "inv_" + "A" * 43, "not-a-token", expired.token[:-1]):
        assert accept(service, token).status_code == 404, token
    assert await pool.fetchval("SELECT count(*) FROM users") == 1  # the team's owner only


async def test_an_invitation_for_another_email_is_refused_to_whoever_is_signed_in(pool, service):
    team = await make_team(pool)
    _, stranger = await make_person(pool)
    async with acting(pool, OPERATOR) as conn:
        made = await invitations.invite(conn, team.workspace_id, "invited@example.com", "ADMIN", None)
    client = sign_in(service, stripped := stranger)
    answer = accept(service, made.token, client)
    assert answer.status_code == 403 and "invited@example.com" in answer.text
    stranger_id = await pool.fetchval("SELECT id FROM users WHERE email = $1", stripped)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
            team.workspace_id,
            stranger_id,
        )
        == 0
    )


async def test_a_member_removed_mid_session_loses_access_at_the_next_request(pool, service):
    team = await make_team(pool, roles=("OWNER", "DEVELOPER"))
    client = sign_in(service, team.emails["DEVELOPER"])
    switched = client.post(
        "/dashboard/workspaces/switch", data={"csrf": csrf_of(client), "workspace_id": str(team.workspace_id)}
    )
    assert switched.status_code == 303
    assert client.get("/dashboard/team").status_code == 200
    made = client.post("/dashboard/keys", data={"csrf": csrf_of(client), "name": "mine"})
    assert made.status_code == 201
    key = re.search(r'id="new-key" readonly value="([^"]+)"', made.text)
    assert key is not None
    assert service.get("/v1/credits/balance", key.group(1)).status_code == 200
    removed = httpx.delete(
        f"{service.url}/v1/organization/users/{team.people['DEVELOPER']}",
        headers={"Authorization": f"Bearer {team.admin_key}"},
        timeout=30,
    )
    assert removed.status_code == 200
    after = client.get("/dashboard/team")
    assert after.status_code == 303 and after.headers["location"].endswith("/dashboard/sign-in")
    ended = await pool.fetchval(
        "SELECT revoked_reason FROM sessions WHERE user_id = $1 AND revoked_at IS NOT NULL", team.people["DEVELOPER"]
    )
    assert ended == "removed from the workspace"
    # and the keys they made there stop working: they cannot go on spending the team's balance
    assert service.get("/v1/credits/balance", key.group(1)).status_code == 401


def key_sign_in(service: Any, key: str) -> httpx.Response:
    client = httpx.Client(base_url=service.url, timeout=30)
    return client.post("/dashboard/sign-in", data={"csrf": form_token(client, "/dashboard/sign-in"), "key": key})


async def test_gateway_key_sign_in_is_for_personal_workspaces_and_can_be_turned_off(
    pool, start_service, make_account, tmp_path
):
    team = await make_team(pool)
    from ledger.gateway import keys as gateway_keys

    team_key = await gateway_keys.create_key(pool, team.workspace_id, "team key")
    account = await make_account()
    service = start_service(mail_outbox_dir=tmp_path / "outbox")
    assert key_sign_in(service, account.key).status_code == 303
    refused = key_sign_in(service, team_key.key)
    assert refused.status_code == 401 and "team workspace" in refused.text
    off = start_service(mail_outbox_dir=tmp_path / "outbox", dashboard_key_sign_in=False)
    assert key_sign_in(off, account.key).status_code == 403
    assert 'name="key"' not in httpx.get(f"{off.url}/dashboard/sign-in", timeout=30).text

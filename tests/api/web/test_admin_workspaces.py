"""The operator's dashboard lists workspaces with their members, projects and audit log."""

from __future__ import annotations

import re

import httpx

from tests.accounts.helpers import make_team
from tests.api.conftest import ADMIN_TOKEN


def operator(service) -> httpx.Client:
    client = httpx.Client(base_url=service.url, timeout=30, follow_redirects=True)
    page = client.get("/admin/dashboard/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    signed = client.post("/admin/dashboard/sign-in", data={"csrf": token.group(1), "token": ADMIN_TOKEN})
    assert signed.status_code == 200 and "/admin/dashboard" in str(signed.url)
    return client


async def test_the_operator_sees_each_workspace_its_members_projects_and_log(pool, start_service):
    service = start_service()
    team = await make_team(pool, roles=("OWNER", "DEVELOPER"))
    client = operator(service)
    listing = client.get("/admin/dashboard/workspaces")
    assert listing.status_code == 200 and f'data-workspace-id="{team.workspace_id}"' in listing.text
    page = client.get(f"/admin/dashboard/workspaces/{team.workspace_id}")
    assert page.status_code == 200
    assert team.emails["OWNER"] in page.text and team.emails["DEVELOPER"] in page.text
    assert "Default project" in page.text and "member.created" in page.text
    everything = client.get("/admin/dashboard/audit")
    assert everything.status_code == 200 and "admin_api_key.created" in everything.text
    assert client.get("/admin/dashboard/workspaces/not-a-uuid").status_code == 404
    # without the operator's session: the sign-in page
    anonymous = httpx.get(f"{service.url}/admin/dashboard/workspaces", timeout=30)
    assert anonymous.status_code == 303 and anonymous.headers["location"].endswith("/admin/dashboard/sign-in")

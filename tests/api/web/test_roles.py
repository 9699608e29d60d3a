"""Every dashboard route, walked by a person of each role: what the permission table allows is
answered (anything but 403), what it does not is a 403 that changes nothing. The walk covers
every /dashboard route the app serves (a new route without a line here fails the test)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from api.app import create_app
from ledger.accounts import invitations, projects
from ledger.accounts.actor import OPERATOR, acting
from ledger.gateway import keys as gateway_keys
from ledger.settings import Settings
from tests.accounts.helpers import PASSWORD, make_team

ALL = {"OWNER", "ADMIN", "DEVELOPER", "VIEWER"}
MANAGERS = {"OWNER", "ADMIN"}
# Reached without a session (sign-in, sign-up, email links, Stripe's return), or the sign-out
PUBLIC = {
    "/dashboard/sign-in", "/dashboard/sign-up", "/dashboard/sign-in/second-factor", "/dashboard/verify-email",
    "/dashboard/forgot-password", "/dashboard/reset-password", "/dashboard/return", "/dashboard/sign-out",
    "/dashboard/invitations/accept",
}  # fmt: skip

# (method, path, form, roles allowed); {ids} are filled in per walk
WALK: list[tuple[str, str, dict[str, str], set[str]]] = [
    ("GET", "/dashboard", {}, ALL),
    ("GET", "/dashboard/usage", {}, ALL),
    ("GET", "/dashboard/usage.csv", {}, ALL),
    ("GET", "/dashboard/transactions", {}, ALL),
    ("GET", "/dashboard/keys", {}, {"OWNER", "ADMIN", "DEVELOPER"}),
    ("GET", "/dashboard/team", {}, ALL),
    ("GET", "/dashboard/audit", {}, MANAGERS),
    ("GET", "/dashboard/audit.csv", {}, MANAGERS),
    ("GET", "/dashboard/workspaces", {}, ALL),
    ("GET", "/dashboard/security", {}, ALL),
    ("POST", "/dashboard/power-level", {"power_level": "eco"}, MANAGERS),
    ("POST", "/dashboard/buy", {"package_id": "x"}, MANAGERS),
    ("POST", "/dashboard/subscribe", {"tier": "starter"}, {"OWNER"}),
    ("POST", "/dashboard/change-tier", {"tier": "starter"}, {"OWNER"}),
    ("POST", "/dashboard/keys", {"name": "walk"}, {"OWNER", "ADMIN", "DEVELOPER"}),
    ("POST", "/dashboard/keys/{key_id}/revoke", {}, MANAGERS),  # a developer revokes only keys they made
    ("POST", "/dashboard/provider-keys", {"provider": "openai", "api_key": "sk-test-1234567890"}, MANAGERS),
    ("POST", "/dashboard/provider-keys/{provider_key_id}/delete", {}, MANAGERS),
    ("POST", "/dashboard/team/invitations", {"email": "new@example.com", "role": "viewer"}, MANAGERS),
    ("POST", "/dashboard/team/invitations/{invite_id}/revoke", {}, MANAGERS),
    ("POST", "/dashboard/team/members/{other_id}/role", {"role": "viewer"}, MANAGERS),
    ("POST", "/dashboard/team/members/{other_id}/remove", {}, MANAGERS),
    ("POST", "/dashboard/team/projects", {"name": "walk"}, MANAGERS),
    ("POST", "/dashboard/team/projects/{project_id}/rename", {"name": "renamed"}, MANAGERS),
    ("POST", "/dashboard/team/projects/{project_id}/archive", {}, MANAGERS),
    ("POST", "/dashboard/team/admin-keys", {"name": "walk"}, MANAGERS),
    ("POST", "/dashboard/team/admin-keys/{admin_key_id}/delete", {}, MANAGERS),
    ("POST", "/dashboard/workspaces", {"name": "Another team"}, ALL),
    ("POST", "/dashboard/workspaces/switch", {"workspace_id": "{workspace_id}"}, ALL),
    ("POST", "/dashboard/security/password", {"current": "wrong", "password": "x"}, ALL),
    ("POST", "/dashboard/security/verification", {}, ALL),
    ("POST", "/dashboard/security/totp/start", {}, ALL),
    ("POST", "/dashboard/security/totp/confirm", {"code": "000000"}, ALL),
    ("POST", "/dashboard/security/totp/disable", {"password": "wrong"}, ALL),
    ("POST", "/dashboard/security/sessions/end-others", {}, ALL),
    ("POST", "/dashboard/security/sessions/{session_id}/end", {}, ALL),
    ("GET", "/dashboard/controls", {}, ALL),
    ("POST", "/dashboard/controls/budgets", {"scope": "workspace", "amount": "5", "period": "daily"}, MANAGERS),
    ("POST", "/dashboard/controls/budgets/{budget_id}/delete", {}, MANAGERS),
    ("POST", "/dashboard/controls/rate-limits", {"scope": "workspace", "max_concurrent": "3"}, MANAGERS),
    ("POST", "/dashboard/controls/rate-limits/{limit_id}/delete", {}, MANAGERS),
    (
        "POST",
        "/dashboard/controls/model-access",
        {"key_id": "{key_id}", "model": "gpt-4"},
        {"OWNER", "ADMIN", "DEVELOPER"},
    ),
    ("POST", "/dashboard/controls/model-access/{access_request_id}/approve", {}, MANAGERS),
    ("POST", "/dashboard/controls/model-access/{access_request_id}/deny", {}, MANAGERS),
    ("GET", "/dashboard/notifications", {}, MANAGERS),
    (
        "POST",
        "/dashboard/notifications/webhooks",
        {"name": "w", "url": "https://example.com/", "events": "*"},
        MANAGERS,
    ),
    ("GET", "/dashboard/notifications/webhooks/{webhook_id}", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/enable", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/disable", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/rotate", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/test", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", {}, MANAGERS),
    ("POST", "/dashboard/notifications/webhooks/{webhook_id}/delete", {}, MANAGERS),
    ("POST", "/dashboard/notifications/settings", {"low_balance_threshold": "5"}, MANAGERS),
    ("POST", "/dashboard/notifications/channels", {"name": "c", "type": "email", "target": "a@example.com"}, MANAGERS),
    ("POST", "/dashboard/notifications/channels/{channel_id}/verify", {"code": "123456"}, MANAGERS),
    ("POST", "/dashboard/notifications/channels/{channel_id}/test", {}, MANAGERS),
    ("POST", "/dashboard/notifications/channels/{channel_id}/delete", {}, MANAGERS),
    (
        "POST",
        "/dashboard/notifications/rules",
        {"name": "r", "condition_type": "spend_rate", "threshold": "5"},
        MANAGERS,
    ),
    ("POST", "/dashboard/notifications/rules/{rule_id}/delete", {}, MANAGERS),
    ("POST", "/dashboard/notifications/alerts/{event_id}/acknowledge", {}, MANAGERS),
    ("POST", "/dashboard/notifications/alerts/{event_id}/resolve", {}, MANAGERS),
    ("POST", "/dashboard/notifications/auto-top-up", {"threshold": "5"}, MANAGERS),
    ("POST", "/dashboard/notifications/auto-top-up/card", {}, MANAGERS),
]


STRIPE_ROUTES = {
    "/dashboard/buy",
    "/dashboard/subscribe",
    "/dashboard/change-tier",
    "/dashboard/notifications/auto-top-up/card",
}


def test_the_walk_covers_every_dashboard_route():
    app = create_app(Settings(database_url="postgresql://x@127.0.0.1/x"), "postgresql://x@127.0.0.1/x")
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/dashboard") and route.path not in PUBLIC
        for method in route.methods or ()
        if method != "HEAD"
    }
    walked = {(method, re.sub(r"\{(\w+)\}", lambda m: "{" + ROUTE_PARAM.get(m.group(1), m.group(1)) + "}", path))
              for method, path, _, _ in WALK}  # fmt: skip
    assert served == walked


# the walk's placeholders by the routes' own parameter names
ROUTE_PARAM = {"provider_key_id": "key_id", "invite_id": "invite_id", "other_id": "person_id",
               "admin_key_id": "key_id", "project_id": "project_id", "session_id": "session_id",
               "budget_id": "budget_id", "limit_id": "limit_id", "access_request_id": "request_id",
               "webhook_id": "webhook_id", "delivery_id": "delivery_id", "channel_id": "channel_id",
               "rule_id": "rule_id", "event_id": "event_id"}  # fmt: skip


def sign_in(service: Any, email: str) -> httpx.Client:
    client = httpx.Client(base_url=service.url, timeout=30, follow_redirects=False)
    page = client.get("/dashboard/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post("/dashboard/sign-in", data={"csrf": token.group(1), "email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/dashboard/security")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    return token.group(1)


async def fixtures_for(pool: Any, team: Any, role: str) -> dict[str, str]:
    """Fresh things for one walker to act on, so each role meets each route in the same state."""
    async with acting(pool, OPERATOR) as conn:
        key = await gateway_keys.create_key(conn, team.workspace_id, "walk target")
        project = await projects.create_project(conn, team.workspace_id, f"walk {uuid.uuid4().hex[:6]}")
        invite = await invitations.invite(
            conn, team.workspace_id, f"{uuid.uuid4().hex[:6]}@example.com", "VIEWER", None
        )
    from ledger.accounts import admin_keys

    async with acting(pool, OPERATOR) as conn:
        admin_key = await admin_keys.create_admin_key(conn, team.workspace_id, "walk", None)
    provider_key = await pool.fetchval(
        "INSERT INTO user_provider_keys (user_id, provider, key_name, encrypted_key, key_hint) "
        "VALUES ($1, 'openai', $2, '\\x00', '...1234') RETURNING id",
        team.workspace_id,
        f"walk {uuid.uuid4().hex[:6]}",
    )
    session_id = await pool.fetchval(
        "INSERT INTO sessions (user_id, token_hash, expires_at) "
        "VALUES ($1, $2, now() + interval '1 hour') RETURNING id",
        team.people[role],
        uuid.uuid4().hex * 2,
    )
    budget_id = await pool.fetchval(
        "INSERT INTO budgets (workspace_id, scope_type, scope_id, amount, period) "
        "VALUES ($1::uuid, 'workspace', $1::uuid::text, 5, 'daily') RETURNING id",
        team.workspace_id,
    )
    limit_id = await pool.fetchval(
        "INSERT INTO rate_limits (workspace_id, scope_type, scope_id, max_concurrent) "
        "VALUES ($1::uuid, 'workspace', $1::uuid::text, 5) RETURNING id",
        team.workspace_id,
    )
    access_request_id = await pool.fetchval(
        "INSERT INTO model_access_requests (workspace_id, key_id, model) VALUES ($1, $2, 'gpt-4') RETURNING id",
        team.workspace_id,
        key.id,
    )
    webhook_id = await pool.fetchval(
        "INSERT INTO webhooks (workspace_id, name, url, secret_encrypted, events) "
        "VALUES ($1, 'walk', 'https://example.com/', '\\x00', '{*}') RETURNING id",
        team.workspace_id,
    )
    event_id = await pool.fetchval(
        "INSERT INTO notification_events (workspace_id, event_type, data)"
        " VALUES ($1, 'webhook.test', '{}') RETURNING id",
        team.workspace_id,
    )
    message_id = await pool.fetchval(
        "INSERT INTO webhook_messages (event_id, webhook_id, workspace_id, status) VALUES ($1, $2, $3, 'failed')"
        " RETURNING id", event_id, webhook_id, team.workspace_id)  # fmt: skip
    delivery_id = await pool.fetchval(
        "INSERT INTO webhook_deliveries (workspace_id, webhook_id, message_id, event_id, event_type, attempt_number,"
        " request_headers, request_body, success) VALUES ($1, $2, $3, $4, 'webhook.test', 1, '{}', '{}', false)"
        " RETURNING id", team.workspace_id, webhook_id, message_id, event_id)  # fmt: skip
    channel_id = await pool.fetchval(
        "INSERT INTO notification_channels (workspace_id, name, type, config_encrypted, target_hint)"
        " VALUES ($1, 'walk', 'email', '\\x00', '…') RETURNING id",
        team.workspace_id)  # fmt: skip
    rule_id = await pool.fetchval(
        "INSERT INTO alert_rules (workspace_id, name, condition_type, threshold) VALUES ($1, 'walk', 'spend_rate', 5)"
        " RETURNING id", team.workspace_id)  # fmt: skip
    event_id = await pool.fetchval(
        "INSERT INTO alert_events (workspace_id, rule_id, message, severity) VALUES ($1, $2, 'walk', 'info')"
        " RETURNING id", team.workspace_id, rule_id)  # fmt: skip
    return {
        "channel_id": str(channel_id), "rule_id": str(rule_id), "event_id": str(event_id),
        "webhook_id": str(webhook_id), "delivery_id": str(delivery_id),
        "budget_id": str(budget_id), "limit_id": str(limit_id), "access_request_id": str(access_request_id),
        "key_id": str(key.id), "project_id": str(project["id"]), "invite_id": str(invite.invitation["id"]),
        "admin_key_id": str(admin_key.row["id"]), "provider_key_id": str(provider_key),
        "other_id": str(team.people["VIEWER" if role != "VIEWER" else "DEVELOPER"]), "session_id": str(session_id),
        "workspace_id": str(team.workspace_id),
    }  # fmt: skip


@pytest.mark.parametrize("role", ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"])
async def test_each_role_reaches_what_its_permissions_allow_and_nothing_else(pool, start_service, tmp_path, role):
    service = start_service(mail_outbox_dir=tmp_path / "outbox", public_url="http://127.0.0.1")
    team = await make_team(pool, roles=("OWNER", "ADMIN", "DEVELOPER", "VIEWER"))
    client = sign_in(service, team.emails[role])
    # each person has their own personal workspace too: walk the team's
    switched = client.post(
        "/dashboard/workspaces/switch", data={"csrf": csrf_of(client), "workspace_id": str(team.workspace_id)}
    )
    assert switched.status_code == 303
    wrong: list[str] = []
    for method, path_template, form, allowed in WALK:
        ids = await fixtures_for(pool, team, role)
        path = path_template.format(**ids)
        before = await pool.fetchval("SELECT count(*) FROM audit_logs WHERE workspace_id = $1", team.workspace_id)
        if method == "GET":
            answer = client.get(path)
        else:
            fields = {name: value.format(**ids) for name, value in form.items()}
            answer = client.post(path, data={"csrf": csrf_of(client), **fields})
        refused = answer.status_code == 403
        # Stripe is not configured here: an allowed purchase is a 503 that says so
        stripe_off = answer.status_code == 503 and path_template in STRIPE_ROUTES
        if (role in allowed) == refused or (answer.status_code >= 500 and not stripe_off):
            wrong.append(f"{method} {path_template}: {answer.status_code} for {role}")
        if refused:
            after = await pool.fetchval("SELECT count(*) FROM audit_logs WHERE workspace_id = $1", team.workspace_id)
            if after != before:
                wrong.append(f"{method} {path_template}: refused, yet something changed")
        if role not in ("OWNER", "ADMIN") and "{other_id}" in path_template:
            assert (
                await pool.fetchval("SELECT count(*) FROM workspace_members WHERE workspace_id = $1", team.workspace_id)
                == 4
            )
    assert wrong == []


async def test_another_workspaces_ids_on_the_dashboard_are_404s_that_change_nothing(pool, start_service, tmp_path):
    service = start_service(mail_outbox_dir=tmp_path / "outbox", public_url="http://127.0.0.1")
    ours = await make_team(pool)
    theirs = await make_team(pool, roles=("OWNER", "VIEWER", "DEVELOPER"))
    ids = await fixtures_for(pool, theirs, "OWNER")
    client = sign_in(service, ours.emails["OWNER"])
    client.post("/dashboard/workspaces/switch", data={"csrf": csrf_of(client), "workspace_id": str(ours.workspace_id)})
    before = await pool.fetchval("SELECT count(*) FROM audit_logs WHERE workspace_id = $1", theirs.workspace_id)
    for method, path_template, form, _ in WALK:
        if method != "POST" or "{" not in path_template or "/security/" in path_template:
            continue
        fields = {name: value.format(**ids) for name, value in form.items()}
        answer = client.post(path_template.format(**ids), data={"csrf": csrf_of(client), **fields})
        assert answer.status_code == 404, (path_template, answer.status_code)
    switched = client.post(
        "/dashboard/workspaces/switch", data={"csrf": csrf_of(client), "workspace_id": str(theirs.workspace_id)}
    )
    assert switched.status_code == 404
    after = await pool.fetchval("SELECT count(*) FROM audit_logs WHERE workspace_id = $1", theirs.workspace_id)
    assert after == before

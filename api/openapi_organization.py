"""The administration API's part of /openapi.json (api/routes/organization.py)."""

from __future__ import annotations

from typing import Any

from api import openapi as oa
from api.routes import organization as org
from api.routes import organization_alerts as alerts
from api.routes import organization_controls as ctl
from api.routes import organization_top_up as top_up
from api.routes import organization_webhooks as hooks

Schema = dict[str, Any]
ADMIN_KEY: list[dict[str, list[str]]] = [{"adminKey": []}]
SECURITY_SCHEME: Schema = {"type": "http", "scheme": "bearer", "description": "an admin key, sk-lg-admin-..."}

STRING = {"type": "string"}
NULL_INT = {"type": ["integer", "null"]}
ROLE = {"type": "string", "enum": ["owner", "admin", "developer", "viewer"]}


def listed(item: Schema) -> Schema:
    return oa.obj(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": item},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        }
    )


def deleted(kind: str) -> Schema:
    return oa.obj({"object": {"const": kind}, "id": STRING, "deleted": {"const": True}})


USER = oa.obj(
    {"object": {"const": "organization.user"}, "id": STRING, "email": STRING, "role": ROLE, "added_at": NULL_INT},
    {"name": STRING},
)
INVITE = oa.obj(
    {
        "object": {"const": "organization.invite"},
        "id": STRING,
        "email": STRING,
        "role": ROLE,
        "status": {"type": "string", "enum": ["pending", "accepted", "expired", "revoked"]},
        "invited_at": NULL_INT,
        "expires_at": NULL_INT,
        "accepted_at": NULL_INT,
    }
)
PROJECT = oa.obj(
    {
        "object": {"const": "organization.project"},
        "id": STRING,
        "name": STRING,
        "status": {"type": "string", "enum": ["active", "archived"]},
        "created_at": NULL_INT,
        "archived_at": NULL_INT,
    },
    {"is_default": {"type": "boolean"}},
)
API_KEY = oa.obj(
    {"object": {"const": "organization.project.api_key"}, "id": STRING, "redacted_value": STRING},
    {"name": STRING, "created_at": NULL_INT, "last_used_at": NULL_INT, "expires_at": NULL_INT},
)
NEW_API_KEY = oa.obj(
    {"object": {"const": "organization.project.api_key"}, "id": STRING, "value": STRING, "project_id": STRING}
)
ADMIN_KEY_OBJECT = oa.obj(
    {"object": {"const": "organization.admin_api_key"}, "id": STRING, "redacted_value": STRING},
    {"name": STRING, "created_at": NULL_INT, "last_used_at": NULL_INT},
)
AUDIT = oa.obj(
    {
        "object": {"const": "organization.audit_log"},
        "id": STRING,
        "type": STRING,
        "effective_at": NULL_INT,
        "actor": {"type": "object"},
        "resource": {"type": "object"},
    }
)
NULL_STRING = {"type": ["string", "null"]}
SCOPE = oa.obj(
    {"type": {"type": "string", "enum": ["workspace", "project", "member", "key", "end_user"]}, "id": STRING}
)
BUDGET = oa.obj(
    {
        "object": {"const": "organization.budget"},
        "id": STRING,
        "scope": SCOPE,
        "model": NULL_STRING,
        "amount": STRING,
        "period": {"type": "string", "enum": ["daily", "weekly", "monthly", "yearly", "lifetime"]},
        "hard": {"type": "boolean"},
        "alert_thresholds": {"type": "array", "items": {"type": "integer"}},
        "spent": STRING,
        "held": STRING,
        "remaining": STRING,
        "period_start": NULL_INT,
        "resets_at": NULL_INT,
        "created_at": NULL_INT,
    }
)
RATE_LIMIT = oa.obj(
    {
        "object": {"const": "organization.rate_limit"},
        "id": STRING,
        "scope": SCOPE,
        "model": NULL_STRING,
        "preset": NULL_STRING,
        "strategy": {"type": "string", "enum": ["sliding_window", "fixed_window", "token_bucket", "leaky_bucket"]},
        "requests": NULL_INT,
        "window_seconds": NULL_INT,
        "tokens_per_minute": NULL_INT,
        "max_concurrent": NULL_INT,
        "in_flight": {"type": "integer"},
        "created_at": NULL_INT,
    }
)
PRESET = oa.obj({"object": {"const": "organization.rate_limit_preset"}, "id": STRING, "name": STRING})
ACCESS_REQUEST = oa.obj(
    {
        "object": {"const": "organization.model_access_request"},
        "id": STRING,
        "key_id": STRING,
        "model": STRING,
        "status": {"type": "string", "enum": ["pending", "approved", "denied"]},
        "created_at": NULL_INT,
    },
    {"reason": NULL_STRING, "requested_by": NULL_STRING, "decided_at": NULL_INT},
)
WEBHOOK_FIELDS: Schema = {
    "object": {"const": "organization.webhook"},
    "id": STRING,
    "name": STRING,
    "description": NULL_STRING,
    "url": STRING,
    "events": {"type": "array", "items": STRING},
    "project_ids": {"type": ["array", "null"], "items": STRING},
    "timeout_ms": {"type": "integer"},
    "enabled": {"type": "boolean"},
    "is_active": {"type": "boolean"},
    "disabled_at": NULL_INT,
    "disabled_reason": NULL_STRING,
    "consecutive_failures": {"type": "integer"},
    "last_failure_at": NULL_INT,
    "last_failure_reason": NULL_STRING,
    "last_triggered_at": NULL_INT,
    "previous_secret_expires_at": NULL_INT,
    "created_at": NULL_INT,
}
WEBHOOK = oa.obj(WEBHOOK_FIELDS)
WEBHOOK_WITH_SECRET = oa.obj({**WEBHOOK_FIELDS, "secret": STRING})
DELIVERY = oa.obj(
    {
        "object": {"const": "organization.webhook.delivery"},
        "id": STRING,
        "webhook_id": STRING,
        "message_id": STRING,
        "event_id": STRING,
        "event_type": STRING,
        "attempt": {"type": "integer"},
        "request_headers": {"type": "object"},
        "request_body": STRING,
        "response_status": NULL_INT,
        "response_headers": {"type": ["object", "null"]},
        "response_body": NULL_STRING,
        "latency_ms": NULL_INT,
        "success": {"type": "boolean"},
        "error": NULL_STRING,
        "next_retry_at": NULL_INT,
        "created_at": NULL_INT,
    }
)
NOTIFICATION_SETTINGS = oa.obj(
    {
        "object": {"const": "organization.notification_settings"},
        "low_balance_threshold": NULL_STRING,
        "spendable": NULL_STRING,
        "billing_contacts": {"type": "array", "items": STRING},
    }
)

CHANNEL = oa.obj(
    {
        "object": {"const": "organization.notification_channel"},
        "id": STRING,
        "name": STRING,
        "type": {"type": "string", "enum": ["email", "slack", "discord", "teams", "webhook", "pagerduty"]},
        "target_hint": STRING,
        "verified": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "failure_count": {"type": "integer"},
        "last_failure_reason": NULL_STRING,
    }
)
RULE = oa.obj(
    {
        "object": {"const": "organization.alert_rule"},
        "id": STRING,
        "name": STRING,
        "condition_type": STRING,
        "threshold": STRING,
        "window_seconds": {"type": "integer"},
        "severity": STRING,
        "cooldown_secs": {"type": "integer"},
        "channel_ids": {"type": "array", "items": STRING},
        "enabled": {"type": "boolean"},
        "last_value": NULL_STRING,
    }
)
ALERT_EVENT = oa.obj(
    {
        "object": {"const": "organization.alert_event"},
        "id": STRING,
        "rule_id": STRING,
        "message": STRING,
        "severity": STRING,
        "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
        "triggered_at": NULL_INT,
        "resolved_at": NULL_INT,
    }
)
EVENT_STATE = oa.obj({"object": {"const": "organization.alert_event"}, "id": STRING, "status": STRING})

AUTO_TOP_UP = oa.obj(
    {
        "object": {"const": "organization.auto_top_up"},
        "enabled": {"type": "boolean"},
        "threshold": NULL_STRING,
        "package_id": NULL_STRING,
        "monthly_limit": NULL_STRING,
        "card_saved": {"type": "boolean"},
        "failures_in_a_row": {"type": "integer"},
        "disabled_reason": NULL_STRING,
        "recent": {"type": "array", "items": {"type": "object"}},
    }
)

PAGING = [
    oa.query("limit", {"type": "integer", "minimum": 1, "maximum": org.MAX_LIMIT}, "items per page (default 20)"),
    oa.query("after", STRING, "cursor: the last_id of the previous page"),
]


def op(summary: str, ok: dict[int, Schema], *errors: int, **more: Any) -> Schema:
    return oa.op(summary, oa.responses(ok, 401, 403, 404, *errors), security=ADMIN_KEY, **more)


def pid(*names: str) -> list[Schema]:
    return [oa.path(name) for name in names]


PATHS: Schema = {
    "/v1/organization/users": {"get": op("Members of the organization", {200: listed(USER)}, parameters=PAGING)},
    "/v1/organization/users/{user_id}": {
        "get": op("A member", {200: USER}, parameters=pid("user_id")),
        "post": op(
            "Change a member's role",
            {200: USER},
            409,
            parameters=pid("user_id"),
            requestBody=oa.model_body(org.RoleChange),
        ),
        "delete": op("Remove a member", {200: deleted("organization.user.deleted")}, 409, parameters=pid("user_id")),
    },
    "/v1/organization/invites": {
        "get": op("Invitations", {200: listed(INVITE)}, parameters=PAGING),
        "post": op(
            "Invite someone by email (the invitation is emailed)",
            {201: INVITE},
            requestBody=oa.model_body(org.NewInvite),
        ),
    },
    "/v1/organization/invites/{invite_id}": {
        "get": op("An invitation", {200: INVITE}, parameters=pid("invite_id")),
        "delete": op(
            "Revoke a pending invitation", {200: deleted("organization.invite.deleted")}, parameters=pid("invite_id")
        ),
    },
    "/v1/organization/projects": {
        "get": op(
            "Projects",
            {200: listed(PROJECT)},
            parameters=[*PAGING, oa.query("include_archived", {"type": "boolean"}, "archived ones too")],
        ),
        "post": op("Create a project", {201: PROJECT}, 409, requestBody=oa.model_body(org.ProjectName)),
    },
    "/v1/organization/projects/{project_id}": {
        "get": op("A project", {200: PROJECT}, parameters=pid("project_id")),
        "post": op(
            "Rename a project",
            {200: PROJECT},
            409,
            parameters=pid("project_id"),
            requestBody=oa.model_body(org.ProjectName),
        ),
    },
    "/v1/organization/projects/{project_id}/archive": {
        "post": op("Archive a project (its gateway keys are revoked)", {200: PROJECT}, parameters=pid("project_id")),
    },
    "/v1/organization/projects/{project_id}/api_keys": {
        "get": op("A project's gateway keys", {200: listed(API_KEY)}, parameters=[*pid("project_id"), *PAGING]),
        "post": op(
            "Create a gateway key in the project (its value shown once)",
            {201: NEW_API_KEY},
            409,
            parameters=pid("project_id"),
            requestBody=oa.model_body(org.NewProjectKey),
        ),
    },
    "/v1/organization/projects/{project_id}/api_keys/{key_id}": {
        "get": op("A project's gateway key", {200: API_KEY}, parameters=pid("project_id", "key_id")),
        "post": op(
            "Set a key's restrictions (allowed models, providers, client networks; null: none)",
            {200: API_KEY},
            parameters=pid("project_id", "key_id"),
            requestBody=oa.model_body(org.KeyRestrictionsChange),
        ),
        "delete": op(
            "Revoke a project's gateway key",
            {200: deleted("organization.project.api_key.deleted")},
            parameters=pid("project_id", "key_id"),
        ),
    },
    "/v1/organization/audit_logs": {
        "get": op(
            "The audit log, newest first",
            {200: listed(AUDIT)},
            parameters=[
                *PAGING,
                oa.query("before", STRING, "cursor: newer than this id"),
                oa.query("event_types[]", STRING, "only these types (project.created, login.failed...)"),
                oa.query("actor_ids[]", STRING, "only these actors"),
                oa.query("resource_ids[]", STRING, "only these resources"),
                oa.query("effective_at[gt]", {"type": "integer"}, "after this unix time"),
                oa.query("effective_at[gte]", {"type": "integer"}, "at or after this unix time"),
                oa.query("effective_at[lt]", {"type": "integer"}, "before this unix time"),
                oa.query("effective_at[lte]", {"type": "integer"}, "at or before this unix time"),
            ],
        )
    },
    "/v1/organization/admin_api_keys": {
        "get": op("Admin keys", {200: listed(ADMIN_KEY_OBJECT)}, parameters=PAGING),
        "post": op(
            "Create an admin key (its value shown once)",
            {201: ADMIN_KEY_OBJECT},
            requestBody=oa.model_body(org.NewAdminKey),
        ),
    },
    "/v1/organization/admin_api_keys/{key_id}": {
        "get": op("An admin key", {200: ADMIN_KEY_OBJECT}, parameters=pid("key_id")),
        "delete": op(
            "Delete an admin key", {200: deleted("organization.admin_api_key.deleted")}, parameters=pid("key_id")
        ),
    },
    "/v1/organization/budgets": {
        "get": op("Budgets, with what each has spent, holds and has left", {200: listed(BUDGET)}, parameters=PAGING),
        "post": op("Create a budget", {201: BUDGET}, requestBody=oa.model_body(ctl.NewBudget)),
    },
    "/v1/organization/budgets/{budget_id}": {
        "get": op("A budget", {200: BUDGET}, parameters=pid("budget_id")),
        "post": op(
            "Change a budget's amount, hardness or alert thresholds",
            {200: BUDGET},
            parameters=pid("budget_id"),
            requestBody=oa.model_body(ctl.BudgetChange),
        ),
        "delete": op("Delete a budget", {200: deleted("organization.budget.deleted")}, parameters=pid("budget_id")),
    },
    "/v1/organization/rate_limits": {
        "get": op("Rate limits", {200: listed(RATE_LIMIT)}, parameters=PAGING),
        "post": op("Create a rate limit", {201: RATE_LIMIT}, requestBody=oa.model_body(ctl.NewRateLimit)),
    },
    "/v1/organization/rate_limits/{rate_limit_id}": {
        "get": op("A rate limit", {200: RATE_LIMIT}, parameters=pid("rate_limit_id")),
        "post": op(
            "Replace a rate limit's numbers (or preset)",
            {200: RATE_LIMIT},
            parameters=pid("rate_limit_id"),
            requestBody=oa.model_body(ctl.Numbers),
        ),
        "delete": op(
            "Delete a rate limit", {200: deleted("organization.rate_limit.deleted")}, parameters=pid("rate_limit_id")
        ),
    },
    "/v1/organization/rate_limit_presets": {
        "get": op("The operator's rate-limit presets", {200: listed(PRESET)}),
    },
    "/v1/organization/model_access_requests": {
        "get": op("Model-access requests, pending first", {200: listed(ACCESS_REQUEST)}, parameters=PAGING[:1]),
        "post": op(
            "Ask for a model a key does not allow", {201: ACCESS_REQUEST}, requestBody=oa.model_body(ctl.ModelAccessAsk)
        ),
    },
    "/v1/organization/model_access_requests/{request_id}/approve": {
        "post": op(
            "Approve: the model joins the key's allowed models", {200: ACCESS_REQUEST}, parameters=pid("request_id")
        ),
    },
    "/v1/organization/model_access_requests/{request_id}/deny": {
        "post": op("Deny a model-access request", {200: ACCESS_REQUEST}, parameters=pid("request_id")),
    },
    "/v1/organization/webhooks": {
        "get": op("Webhooks (never their secrets)", {200: listed(WEBHOOK)}, parameters=PAGING),
        "post": op(
            "Create a webhook (its signing secret shown once)",
            {201: WEBHOOK_WITH_SECRET},
            409,
            503,
            requestBody=oa.model_body(hooks.NewWebhook),
        ),
    },
    "/v1/organization/webhooks/{webhook_id}": {
        "get": op("A webhook", {200: WEBHOOK}, parameters=pid("webhook_id")),
        "post": op(
            "Change a webhook; enabled: true turns a disabled one back on",
            {200: WEBHOOK},
            parameters=pid("webhook_id"),
            requestBody=oa.model_body(hooks.ChangedWebhook),
        ),
        "delete": op("Delete a webhook", {200: deleted("organization.webhook.deleted")}, parameters=pid("webhook_id")),
    },
    "/v1/organization/webhooks/{webhook_id}/rotate_secret": {
        "post": op(
            "A new signing secret (shown once); the current one also signs for overlap_seconds",
            {200: WEBHOOK_WITH_SECRET},
            503,
            parameters=pid("webhook_id"),
            requestBody=oa.model_body(hooks.Rotation),
        ),
    },
    "/v1/organization/webhooks/{webhook_id}/test": {
        "post": op(
            "Send a webhook.test event to this endpoint",
            {202: oa.obj({"object": {"const": "organization.webhook.test"}, "event_id": STRING})},
            409,
            parameters=pid("webhook_id"),
        ),
    },
    "/v1/organization/webhooks/{webhook_id}/deliveries": {
        "get": op(
            "Delivery attempts, newest first",
            {200: listed(DELIVERY)},
            parameters=[
                *pid("webhook_id"),
                PAGING[0],
                oa.query("before", STRING, "cursor: the last id of the previous page"),
            ],
        ),
    },
    "/v1/organization/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {
        "post": op(
            "Send that attempt's event again, now",
            {
                202: oa.obj(
                    {
                        "object": {"const": "organization.webhook.replay"},
                        "delivery_id": STRING,
                        "queued": {"const": True},
                    }
                )
            },
            parameters=pid("webhook_id", "delivery_id"),
        ),
    },
    "/v1/organization/notification_settings": {
        "get": op("The low-balance threshold and billing contacts", {200: NOTIFICATION_SETTINGS}),
        "post": op(
            "Set the low-balance threshold (null: off) or the billing contacts",
            {200: NOTIFICATION_SETTINGS},
            requestBody=oa.model_body(hooks.SettingsChange),
        ),
    },
    "/v1/organization/credit_grants": {
        "get": op(
            "Credit grants (bonuses, promotions, adjustments): what is left of each and when it expires",
            {
                200: listed(
                    oa.obj(
                        {
                            "object": {"const": "organization.credit_grant"},
                            "id": STRING,
                            "kind": STRING,
                            "amount": STRING,
                            "remaining": STRING,
                            "priority": {"type": "integer"},
                            "expires_at": NULL_INT,
                            "expired_at": NULL_INT,
                            "created_at": NULL_INT,
                        }
                    )
                )
            },
            parameters=PAGING[:1],
        ),
    },
    "/v1/organization/auto_top_up": {
        "get": op("Auto top-up: its settings and latest charges", {200: AUTO_TOP_UP}),
        "post": op(
            "Turn auto top-up on or off: threshold, package and monthly limit (a saved card first)",
            {200: AUTO_TOP_UP},
            requestBody=oa.model_body(top_up.TopUpSettingsChange),
        ),
    },
    "/v1/organization/auto_top_up/card": {
        "post": op(
            "Save a card: a Stripe Checkout in setup mode (its url)",
            {201: oa.obj({"id": STRING, "url": STRING})},
            502,
            503,
            requestBody=oa.model_body(top_up.CardSetup),
        ),
    },
    "/v1/organization/notification_channels": {
        "get": op("Notification channels (never their targets)", {200: listed(CHANNEL)}),
        "post": op(
            "Add a channel: a test message with a code is sent; it is used once the code is entered",
            {201: CHANNEL},
            409,
            503,
            requestBody=oa.model_body(alerts.NewChannel),
        ),
    },
    "/v1/organization/notification_channels/{channel_id}": {
        "get": op("A notification channel", {200: CHANNEL}, parameters=pid("channel_id")),
        "post": op(
            "Turn a channel on or off",
            {200: CHANNEL},
            parameters=pid("channel_id"),
            requestBody=oa.model_body(alerts.ChannelChange),
        ),
        "delete": op(
            "Delete a channel",
            {200: deleted("organization.notification_channel.deleted")},
            parameters=pid("channel_id"),
        ),
    },
    "/v1/organization/notification_channels/{channel_id}/verify": {
        "post": op(
            "Verify a channel with the code of its test message",
            {200: CHANNEL},
            parameters=pid("channel_id"),
            requestBody=oa.model_body(alerts.Verification),
        ),
    },
    "/v1/organization/notification_channels/{channel_id}/test": {
        "post": op(
            "Send a new test message (with a new code while unverified)",
            {202: oa.obj({"object": {"const": "organization.notification_channel.test"}, "queued": {"const": True}})},
            parameters=pid("channel_id"),
        ),
    },
    "/v1/organization/alert_rules": {
        "get": op("Alert rules, with each one's last value", {200: listed(RULE)}),
        "post": op("Create an alert rule", {201: RULE}, 409, requestBody=oa.model_body(alerts.NewRule)),
    },
    "/v1/organization/alert_rules/{rule_id}": {
        "get": op("An alert rule", {200: RULE}, parameters=pid("rule_id")),
        "post": op(
            "Turn a rule on or off",
            {200: RULE},
            parameters=pid("rule_id"),
            requestBody=oa.model_body(alerts.RuleChange),
        ),
        "delete": op("Delete a rule", {200: deleted("organization.alert_rule.deleted")}, parameters=pid("rule_id")),
    },
    "/v1/organization/alert_events": {
        "get": op(
            "Alert events, newest first",
            {200: listed(ALERT_EVENT)},
            parameters=[PAGING[0], oa.query("status", {"type": "string", "enum": ["open", "resolved"]}, "filter")],
        ),
    },
    "/v1/organization/alert_events/{event_id}/acknowledge": {
        "post": op("Acknowledge an open alert", {200: EVENT_STATE}, parameters=pid("event_id")),
    },
    "/v1/organization/alert_events/{event_id}/resolve": {
        "post": op(
            "Resolve an alert by hand (its channels are told)",
            {200: EVENT_STATE},
            parameters=pid("event_id"),
            requestBody=oa.model_body(alerts.Resolution),
        ),
    },
}

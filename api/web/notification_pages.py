"""/dashboard/notifications: the workspace's webhooks (state, failures, the delivery log with a
replay button, a test event, the secret shown once at creation and at rotation), its alert
channels (verified by their test message's code), rules and open alerts, auto top-up, and its
notification settings (the low-balance threshold, billing contacts). Owners and admins only:
webhook URLs and delivery logs are theirs to see. Same ledger functions as the administration API
(/v1/organization/webhooks, /notification_settings)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes.organization_alerts import NewChannel, NewRule
from api.routes.organization_webhooks import NewWebhook, cipher_of
from api.routes.purchases import started_checkout, stripe_of
from api.services import services
from api.web.pages import USER_AREA, PageError, checked_form, form_model, page, redirect, render
from api.web.user_pages import signed_in
from ledger.accounts import workspaces
from ledger.accounts.actor import acting
from ledger.accounts.roles import Permission
from ledger.billing import auto_top_up
from ledger.billing.auto_top_up import TopUpChange
from ledger.billing.packages import packages_on_sale
from ledger.notify import alerts, channels, contacts, webhooks
from ledger.notify.alerts import CONDITION_TYPES, SEVERITIES, RuleSpec
from ledger.notify.channels import CHANNEL_TYPES
from ledger.notify.events import EVENT_TYPES
from ledger.notify.webhooks import WebhookChange, WebhookSpec

P = Permission
ROOT = USER_AREA.root + "/notifications"
NOTICES = {
    "enabled": "Webhook enabled: its waiting events go out now.",
    "disabled": "Webhook turned off.",
    "deleted": "Webhook deleted.",
    "tested": "A webhook.test event is on its way; see the log below.",
    "replayed": "Sent again; see the log.",
    "saved": "Notification settings saved.",
    "verified": "Channel verified: alerts go to it now.",
    "channel_tested": "A test message is on its way.",
    "channel_deleted": "Channel deleted.",
    "rule_created": "Alert rule added.",
    "rule_deleted": "Alert rule deleted.",
    "acknowledged": "Alert acknowledged.",
    "resolved": "Alert resolved.",
    "top_up_saved": "Auto top-up saved.",
}


def _webhook_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["webhook_id"])
    except ValueError:
        raise PageError(404, "No such webhook in this workspace.") from None


async def _page(request: Request, extra: dict[str, Any] | None = None, status: int = 200) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    pool = services(request).pool
    context: dict[str, Any] = {
        "webhooks": await webhooks.webhooks_of(pool, viewer.user_id, None, 100),
        "settings": await contacts.settings_of(pool, viewer.user_id),
        "members": await workspaces.members(pool, viewer.user_id, None, 1000) if viewer.person_id else [],
        "event_types": EVENT_TYPES,
        "channels": await channels.channels_of(pool, viewer.user_id),
        "rules": await alerts.rules_of(pool, viewer.user_id),
        "open_alerts": await alerts.events_of(pool, viewer.user_id, "open", 50),
        "channel_types": CHANNEL_TYPES,
        "condition_types": CONDITION_TYPES,
        "severities": SEVERITIES,
        "top_up": await auto_top_up.settings_of(pool, viewer.user_id),
        "top_ups": await auto_top_up.top_ups_of(pool, viewer.user_id, 5),
        "packages": await packages_on_sale(pool),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        **(extra or {}),
    }
    return render(request, "user/notifications.html", context, status, session=session)


@page(USER_AREA)
async def notifications_page(request: Request) -> Response:
    return await _page(request)


@page(USER_AREA)
async def create_webhook(request: Request) -> Response:
    """The secret is shown on this answer only (not stored in plaintext, not in a redirect's URL)."""
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    fields = await checked_form(request, session)
    events = [e.strip() for e in fields.get("events", "").split(",") if e.strip()]
    new = form_model(NewWebhook, {"name": fields.get("name", ""), "url": fields.get("url", ""), "events": events})
    box = cipher_of(request)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        made = await webhooks.create_webhook(
            conn,
            box,
            viewer.user_id,
            WebhookSpec(new.name, new.url, new.events),
            viewer.person_id,
            allow_private=services(request).settings.webhook_allow_private_targets,
        )
    return await _page(request, {"new_secret": made.secret, "new_webhook": made.webhook}, 201)


def switch(enabled: bool) -> Any:
    @page(USER_AREA)
    async def endpoint(request: Request) -> Response:
        session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
        await checked_form(request, session)
        async with acting(services(request).pool, viewer.actor(request)) as conn:
            changed = await webhooks.modify_webhook(
                conn, viewer.user_id, _webhook_id(request), WebhookChange(enabled=enabled), allow_private=True
            )
        if changed is None:
            raise PageError(404, "No such webhook in this workspace.")
        return redirect(ROOT, notice="enabled" if enabled else "disabled")

    return endpoint


@page(USER_AREA)
async def delete_webhook(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await webhooks.delete_webhook(conn, viewer.user_id, _webhook_id(request)):
            raise PageError(404, "No such webhook in this workspace.")
    return redirect(ROOT, notice="deleted")


@page(USER_AREA)
async def rotate_secret(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    box = cipher_of(request)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        secret = await webhooks.rotate_secret(conn, box, viewer.user_id, _webhook_id(request), timedelta(days=1))
    if secret is None:
        raise PageError(404, "No such webhook in this workspace.")
    return await _page(request, {"new_secret": secret, "rotated": True})


@page(USER_AREA)
async def send_test(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    webhook_id = _webhook_id(request)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if await webhooks.webhook(conn, viewer.user_id, webhook_id) is None:
            raise PageError(404, "No such webhook in this workspace.")
        if await webhooks.send_test(conn, viewer.user_id, webhook_id, viewer.person_id) is None:
            raise PageError(409, "This webhook is off or disabled: enable it first.")
    return redirect(f"{ROOT}/webhooks/{webhook_id}", notice="tested")


@page(USER_AREA)
async def webhook_log(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    pool = services(request).pool
    found = await webhooks.webhook(pool, viewer.user_id, _webhook_id(request))
    if found is None:
        raise PageError(404, "No such webhook in this workspace.")
    deliveries = await webhooks.deliveries_of(pool, viewer.user_id, found["id"], None, 100)
    context = {
        "webhook": found,
        "deliveries": deliveries,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "user/webhook_log.html", context, session=session)


@page(USER_AREA)
async def replay(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    webhook_id = _webhook_id(request)
    raw = request.path_params["delivery_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise PageError(404, "No such delivery of this webhook.")
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await webhooks.replay(conn, viewer.user_id, webhook_id, int(raw), viewer.person_id):
            raise PageError(404, "No such delivery of this webhook, or it is waiting to be sent already.")
    return redirect(f"{ROOT}/webhooks/{webhook_id}", notice="replayed")


@page(USER_AREA)
async def save_settings(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    fields = await checked_form(request, session)
    threshold = fields.get("low_balance_threshold", "").strip() or None
    contacts_wanted = []
    for name in fields:  # one checkbox per member: billing_contact:<their id>
        if name.startswith("billing_contact:"):
            try:
                contacts_wanted.append(uuid.UUID(name.split(":", 1)[1]))
            except ValueError:
                raise PageError(400, "A billing contact must be a member's id.") from None
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await contacts.set_low_balance_threshold(conn, viewer.user_id, threshold)
        if viewer.person_id and "contacts_shown" in fields:
            await contacts.set_billing_contacts(conn, viewer.user_id, contacts_wanted)
    return redirect(ROOT, notice="saved")


# ---- channels, alert rules, alert events ---------------------------------------------------------


def _path_uuid(request: Request, name: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise PageError(404, f"No such {what} in this workspace.") from None


@page(USER_AREA)
async def create_channel(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    fields = await checked_form(request, session)
    new = form_model(
        NewChannel, {"name": fields.get("name", ""), "type": fields.get("type", ""), "target": fields.get("target", "")}
    )
    box = cipher_of(request)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        made = await channels.create_channel(
            conn, box, viewer.user_id, new.name, new.type, new.target, viewer.person_id,
            allow_private=services(request).settings.webhook_allow_private_targets,
        )  # fmt: skip
    extra: dict[str, Any] = {"notice": "Channel added: enter the code of its test message to start using it."}
    if made.secret is not None:
        extra["new_secret"] = made.secret
    return await _page(request, extra, 201)


@page(USER_AREA)
async def verify_channel(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    fields = await checked_form(request, session)
    channel_id = _path_uuid(request, "channel_id", "channel")
    box = cipher_of(request)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        verified = await channels.verify(
            conn, box, viewer.user_id, channel_id, fields.get("code", "")[:20], viewer.person_id
        )
    if verified is None:
        raise PageError(404, "No such channel in this workspace.")
    if not verified:
        raise PageError(400, "That is not the code of the channel's test message, or it expired: send a new test.")
    return redirect(ROOT, notice="verified")


@page(USER_AREA)
async def test_channel(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    box = cipher_of(request)
    channel_id = _path_uuid(request, "channel_id", "channel")
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        sent = await channels.resend_test(conn, box, viewer.user_id, channel_id, viewer.person_id)
    if sent is None:
        raise PageError(404, "No such channel in this workspace.")
    if not sent:
        raise PageError(429, f"This channel had its {channels.MOST_TESTS_A_DAY} test messages today.")
    return redirect(ROOT, notice="channel_tested")


@page(USER_AREA)
async def delete_channel(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await channels.delete_channel(conn, viewer.user_id, _path_uuid(request, "channel_id", "channel")):
            raise PageError(404, "No such channel in this workspace.")
    return redirect(ROOT, notice="channel_deleted")


@page(USER_AREA)
async def create_rule(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    fields = await checked_form(request, session)
    chosen = [name.split(":", 1)[1] for name in fields if name.startswith("channel:")]
    new = form_model(
        NewRule,
        {
            "name": fields.get("name", ""),
            "condition_type": fields.get("condition_type", ""),
            "threshold": fields.get("threshold", ""),
            "window_seconds": fields.get("window_seconds") or 300,
            "provider": fields.get("provider") or None,
            "budget_id": fields.get("budget_id") or None,
            "severity": fields.get("severity") or "warning",
            "channel_ids": chosen,
        },
    )
    spec = RuleSpec(
        new.name, new.condition_type, new.threshold, new.window_seconds, new.min_requests, new.severity,
        new.cooldown_secs, new.channel_ids, new.budget_id, new.provider, new.description,
    )  # fmt: skip
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await alerts.create_rule(conn, viewer.user_id, spec, viewer.person_id)
    return redirect(ROOT, notice="rule_created")


@page(USER_AREA)
async def delete_rule(request: Request) -> Response:
    session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
    await checked_form(request, session)
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        if not await alerts.delete_rule(conn, viewer.user_id, _path_uuid(request, "rule_id", "alert rule")):
            raise PageError(404, "No such alert rule in this workspace.")
    return redirect(ROOT, notice="rule_deleted")


def alert_action(resolve: bool) -> Any:
    @page(USER_AREA)
    async def endpoint(request: Request) -> Response:
        session, viewer = await signed_in(request, P.MANAGE_NOTIFICATIONS)
        fields = await checked_form(request, session)
        event_id = _path_uuid(request, "event_id", "alert")
        async with acting(services(request).pool, viewer.actor(request)) as conn:
            if resolve:
                note = fields.get("note", "")[:1000] or None
                done = await alerts.resolve(conn, viewer.user_id, event_id, viewer.person_id, note)
            else:
                done = await alerts.acknowledge(conn, viewer.user_id, event_id, viewer.person_id)
        if not done:
            raise PageError(404, "No such open alert in this workspace.")
        return redirect(ROOT, notice="resolved" if resolve else "acknowledged")

    return endpoint


# ---- auto top-up ---------------------------------------------------------------------------------


@page(USER_AREA)
async def save_top_up(request: Request) -> Response:
    session, viewer = await signed_in(request, P.BUY_CREDITS)
    fields = await checked_form(request, session)
    package = fields.get("package_id") or None
    try:
        package_id = None if package is None else uuid.UUID(package)
    except ValueError:
        raise PageError(400, "Choose a credit package.") from None
    change = TopUpChange(
        fields.get("enabled") == "on",
        fields.get("threshold") or None,
        package_id,
        fields.get("monthly_limit") or None,
    )
    async with acting(services(request).pool, viewer.actor(request)) as conn:
        await auto_top_up.configure(conn, viewer.user_id, change, viewer.person_id)
    return redirect(ROOT, notice="top_up_saved")


@page(USER_AREA)
async def save_card(request: Request) -> Response:
    session, viewer = await signed_in(request, P.BUY_CREDITS)
    await checked_form(request, session)
    public = services(request).settings.public_url or str(request.base_url).rstrip("/")
    back = public + USER_AREA.root + "/return"
    started = await started_checkout(
        auto_top_up.card_setup(
            services(request).pool, stripe_of(request), viewer.user_id, back + "?checkout=done",
            back + "?checkout=cancelled",
        )
    )  # fmt: skip
    return redirect(started["url"])

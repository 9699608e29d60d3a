"""`ledger webhooks` and `ledger notifications`: the operator lists, creates, enables, disables and
deletes a workspace's webhooks, reads their delivery log, and sets its low-balance threshold (as
the administration API does for its owners and admins); every change is in the audit log as the
operator's."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg

from ledger.accounts.actor import OPERATOR, acting
from ledger.billing import auto_top_up
from ledger.cli.context import with_connection
from ledger.cli.controls import _uuid
from ledger.cli.output import emit
from ledger.errors import InvalidArgument
from ledger.gateway.byok import cipher_of_settings
from ledger.notify import alerts, channels, contacts, webhooks
from ledger.notify.events import EVENT_TYPES
from ledger.notify.webhooks import WebhookChange, WebhookSpec
from ledger.settings import Settings


def cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    cipher = cipher_of_settings(*settings.cipher_keys())
    if cipher is None:
        raise InvalidArgument("LEDGER_ENCRYPTION_KEY is not set: webhook secrets are stored encrypted under it")
    spec = WebhookSpec(args.name, args.url, args.events.split(","))

    async def create(db: asyncpg.Connection) -> dict[str, Any]:
        async with acting(db, OPERATOR) as conn:
            made = await webhooks.create_webhook(
                conn, cipher, workspace, spec, None, allow_private=settings.webhook_allow_private_targets
            )
        # the secret is printed once, here: give it to the endpoint's owner
        return {**made.webhook, "secret": made.secret}

    emit(with_connection(settings, create), args.json)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")

    async def listing(db: asyncpg.Connection) -> list[webhooks.Webhook]:
        return await webhooks.webhooks_of(db, workspace, None, 1000)

    emit(with_connection(settings, listing), args.json)
    return 0


def cmd_switch(enabled: bool) -> Any:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        workspace, webhook_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

        async def switch(db: asyncpg.Connection) -> webhooks.Webhook | None:
            async with acting(db, OPERATOR) as conn:
                return await webhooks.modify_webhook(
                    conn, workspace, webhook_id, WebhookChange(enabled=enabled), allow_private=True
                )

        changed = with_connection(settings, switch)
        if changed is None:
            raise InvalidArgument(f"no webhook {webhook_id} in workspace {workspace}")
        emit(changed, args.json)
        return 0

    return run


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    workspace, webhook_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

    async def delete(db: asyncpg.Connection) -> bool:
        async with acting(db, OPERATOR) as conn:
            return await webhooks.delete_webhook(conn, workspace, webhook_id)

    if not with_connection(settings, delete):
        raise InvalidArgument(f"no webhook {webhook_id} in workspace {workspace}")
    emit({"deleted": str(webhook_id)}, args.json)
    return 0


def cmd_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    workspace, webhook_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

    async def listing(db: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await webhooks.deliveries_of(db, workspace, webhook_id, None, args.limit)
        keep = ("id", "created_at", "event_type", "attempt_number", "response_status", "success", "error_message")
        return [{k: row[k] for k in keep} for row in rows]  # type: ignore[literal-required]

    emit(with_connection(settings, listing), args.json)
    return 0


def cmd_low_balance(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    value = None if args.threshold == "off" else args.threshold

    async def change(db: asyncpg.Connection) -> contacts.NotificationSettings:
        async with acting(db, OPERATOR) as conn:
            await contacts.set_low_balance_threshold(conn, workspace, value)
            return await contacts.settings_of(conn, workspace)

    emit(_settings(with_connection(settings, change)), args.json)
    return 0


def cmd_channels(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    emit(with_connection(settings, lambda db: channels.channels_of(db, workspace)), args.json)
    return 0


def cmd_rules(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    emit(with_connection(settings, lambda db: alerts.rules_of(db, workspace)), args.json)
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    state = "open" if args.open else None
    emit(with_connection(settings, lambda db: alerts.events_of(db, workspace, state, args.limit)), args.json)
    return 0


def cmd_resolve(settings: Settings, args: argparse.Namespace) -> int:
    workspace, event_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

    async def resolve(db: asyncpg.Connection) -> bool:
        async with acting(db, OPERATOR) as conn:
            return await alerts.resolve(conn, workspace, event_id, None, args.note)

    if not with_connection(settings, resolve):
        raise InvalidArgument(f"no open alert {event_id} in workspace {workspace}")
    emit({"resolved": str(event_id)}, args.json)
    return 0


def cmd_top_up_show(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")

    async def show(db: asyncpg.Connection) -> dict[str, Any]:
        found = await auto_top_up.settings_of(db, workspace)
        return {"settings": found, "recent": await auto_top_up.top_ups_of(db, workspace, 10)}

    emit(with_connection(settings, show), args.json)
    return 0


def cmd_top_up_off(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")

    async def off(db: asyncpg.Connection) -> auto_top_up.TopUpSettings:
        async with acting(db, OPERATOR) as conn:
            return await auto_top_up.configure(conn, workspace, auto_top_up.TopUpChange(False), None)

    emit(with_connection(settings, off), args.json)
    return 0


def _settings(found: contacts.NotificationSettings) -> dict[str, Any]:
    return {
        "low_balance_threshold": found.low_balance_threshold,
        "spendable": found.spendable,
        "billing_contacts": [str(m) for m in found.billing_contacts],
    }


def add_commands(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    group = commands.add_parser("webhooks", help="a workspace's signed webhooks").add_subparsers(
        dest="webhooks_command", required=True
    )
    create = group.add_parser("create", help="a new webhook; its signing secret is printed once", parents=[json_flag])
    create.add_argument("--workspace", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--url", required=True)
    create.add_argument("--events", default="*", help=f"comma-separated: * or any of {', '.join(EVENT_TYPES)}")
    create.set_defaults(func=cmd_create)
    listing = group.add_parser("list", help="webhooks with their failures and state", parents=[json_flag])
    listing.add_argument("--workspace", required=True)
    listing.set_defaults(func=cmd_list)
    for name, enabled, text in [
        ("enable", True, "turn on (a disabled one too: its waiting events go out)"),
        ("disable", False, "turn off"),
    ]:
        switch = group.add_parser(name, help=text, parents=[json_flag])
        switch.add_argument("--workspace", required=True)
        switch.add_argument("id")
        switch.set_defaults(func=cmd_switch(enabled))
    delete = group.add_parser("delete", help="delete a webhook and its log", parents=[json_flag])
    delete.add_argument("--workspace", required=True)
    delete.add_argument("id")
    delete.set_defaults(func=cmd_delete)
    deliveries = group.add_parser("deliveries", help="a webhook's latest delivery attempts", parents=[json_flag])
    deliveries.add_argument("--workspace", required=True)
    deliveries.add_argument("id")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(func=cmd_deliveries)

    notifications = commands.add_parser("notifications", help="a workspace's notification settings")
    sub = notifications.add_subparsers(dest="notifications_command", required=True)
    low = sub.add_parser("low-balance", help="email and balance.low below this many credits left", parents=[json_flag])
    low.add_argument("--workspace", required=True)
    low.add_argument("threshold", help="credits, or 'off'")
    low.set_defaults(func=cmd_low_balance)
    listed = sub.add_parser("channels", help="alert channels (never their targets)", parents=[json_flag])
    listed.add_argument("--workspace", required=True)
    listed.set_defaults(func=cmd_channels)

    group = commands.add_parser("alerts", help="a workspace's alert rules and events").add_subparsers(
        dest="alerts_command", required=True
    )
    rules = group.add_parser("rules", help="alert rules with each one's last value", parents=[json_flag])
    rules.add_argument("--workspace", required=True)
    rules.set_defaults(func=cmd_rules)
    events = group.add_parser("list", help="alert events, newest first", parents=[json_flag])
    events.add_argument("--workspace", required=True)
    events.add_argument("--open", action="store_true", help="only those not resolved")
    events.add_argument("--limit", type=int, default=50)
    events.set_defaults(func=cmd_alerts)
    resolve = group.add_parser("resolve", help="resolve an open alert (its channels are told)", parents=[json_flag])
    resolve.add_argument("--workspace", required=True)
    resolve.add_argument("id")
    resolve.add_argument("--note")
    resolve.set_defaults(func=cmd_resolve)

    top_up = commands.add_parser("auto-top-up", help="a workspace's auto top-up").add_subparsers(
        dest="auto_top_up_command", required=True
    )
    show = top_up.add_parser("show", help="its settings and latest charges", parents=[json_flag])
    show.add_argument("--workspace", required=True)
    show.set_defaults(func=cmd_top_up_show)
    stop = top_up.add_parser("off", help="turn it off (the owners turn it on, with their card)", parents=[json_flag])
    stop.add_argument("--workspace", required=True)
    stop.set_defaults(func=cmd_top_up_off)

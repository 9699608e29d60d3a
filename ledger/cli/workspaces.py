"""`ledger workspaces`: the operator starts a team (its workspace, default project, the owner's
invitation by email, and a first admin key) and lists the workspaces there are."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg

from ledger.accounts import admin_keys, invitations, workspaces
from ledger.accounts.actor import OPERATOR, acting
from ledger.accounts.emails import clean_email
from ledger.accounts.mail import mailer_of_settings
from ledger.accounts.mail_messages import send_invitation
from ledger.accounts.overview import WorkspaceListed, workspaces_overview
from ledger.cli.context import with_connection
from ledger.cli.output import emit
from ledger.errors import InvalidArgument
from ledger.settings import Settings


def link_base(settings: Settings) -> str:
    """Where the invitation's link points: LEDGER_PUBLIC_URL, else the address `ledger serve` listens on."""
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        email = clean_email(args.owner_email)
    except ValueError as exc:
        raise InvalidArgument(f"--owner-email: {exc}") from None
    name = args.name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidArgument("--name needs 1 to 100 characters")

    async def create(db: asyncpg.Connection) -> dict[str, Any]:
        async with acting(db, OPERATOR) as conn:
            team = await workspaces.create_workspace(conn, name, None)
            invite = await invitations.invite(conn, team["id"], email, "OWNER", "operator")
            key = await admin_keys.create_admin_key(conn, team["id"], "first admin key", "operator")
        await send_invitation(mailer_of_settings(settings), link_base(settings), email, name, "OWNER", invite.token)
        return {"workspace_id": team["id"], "name": name, "owner_invited": email, "admin_key": key.key}

    made = with_connection(settings, create)
    print("the admin key is shown only now; store it", file=sys.stderr)
    emit(made, args.json)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def listing(db: asyncpg.Connection) -> list[WorkspaceListed]:
        return await workspaces_overview(db, 1000)

    emit(with_connection(settings, listing), args.json)
    return 0


def add_commands(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    group = commands.add_parser("workspaces", help="team workspaces").add_subparsers(
        dest="workspaces_command", required=True
    )
    create = group.add_parser(
        "create",
        help="create a team workspace, invite its owner by email, print its id and a first admin key",
        parents=[json_flag],
    )
    create.add_argument("--name", required=True)
    create.add_argument("--owner-email", required=True)
    create.set_defaults(func=cmd_create)
    group.add_parser("list", help="workspaces with their members and projects", parents=[json_flag]).set_defaults(
        func=cmd_list
    )

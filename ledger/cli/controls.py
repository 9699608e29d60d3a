"""`ledger budgets` and `ledger rate-limits`: the operator sets, lists and deletes a workspace's
spend controls (as the administration API does for its owners and admins); every change is in
the audit log as the operator's."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import asyncpg

from ledger.accounts.actor import OPERATOR, acting
from ledger.cli.context import with_connection
from ledger.cli.output import emit
from ledger.controls import budgets, rate_limits
from ledger.controls.budgets import PERIODS, BudgetSpec
from ledger.controls.rate_limits import STRATEGIES, LimitNumbers
from ledger.controls.scopes import SCOPE_TYPES
from ledger.errors import InvalidArgument
from ledger.settings import Settings


def _uuid(value: str, flag: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{flag} must be an id") from None


def _thresholds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidArgument("--alert-thresholds is a comma-separated list of percents: 50,80,100") from None


def cmd_budget_create(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    spec = BudgetSpec(
        args.scope,
        args.scope_id,
        args.model,
        args.amount,
        args.period,
        not args.soft,
        _thresholds(args.alert_thresholds),
    )

    async def create(db: asyncpg.Connection) -> budgets.Budget:
        async with acting(db, OPERATOR) as conn:
            return await budgets.create_budget(conn, workspace, spec, None)

    emit(with_connection(settings, create), args.json)
    return 0


def cmd_budget_list(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")

    async def listing(db: asyncpg.Connection) -> list[budgets.Budget]:
        return await budgets.budgets_of(db, workspace, None, 1000)

    emit(with_connection(settings, listing), args.json)
    return 0


def cmd_budget_delete(settings: Settings, args: argparse.Namespace) -> int:
    workspace, budget_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

    async def delete(db: asyncpg.Connection) -> bool:
        async with acting(db, OPERATOR) as conn:
            return await budgets.delete_budget(conn, workspace, budget_id)

    if not with_connection(settings, delete):
        raise InvalidArgument(f"no budget {budget_id} in workspace {workspace}")
    emit({"deleted": str(budget_id)}, args.json)
    return 0


def cmd_limit_create(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")
    numbers = LimitNumbers(
        args.preset, args.strategy, args.requests, args.window_seconds, args.tokens_per_minute, args.max_concurrent
    )

    async def create(db: asyncpg.Connection) -> rate_limits.RateLimit:
        async with acting(db, OPERATOR) as conn:
            return await rate_limits.create_rate_limit(
                conn, workspace, args.scope, args.scope_id, args.model, numbers, None
            )

    emit(with_connection(settings, create), args.json)
    return 0


def cmd_limit_list(settings: Settings, args: argparse.Namespace) -> int:
    workspace = _uuid(args.workspace, "--workspace")

    async def listing(db: asyncpg.Connection) -> list[rate_limits.RateLimit]:
        return await rate_limits.rate_limits_of(db, workspace, None, 1000)

    emit(with_connection(settings, listing), args.json)
    return 0


def cmd_limit_delete(settings: Settings, args: argparse.Namespace) -> int:
    workspace, limit_id = _uuid(args.workspace, "--workspace"), _uuid(args.id, "id")

    async def delete(db: asyncpg.Connection) -> bool:
        async with acting(db, OPERATOR) as conn:
            return await rate_limits.delete_rate_limit(conn, workspace, limit_id)

    if not with_connection(settings, delete):
        raise InvalidArgument(f"no rate limit {limit_id} in workspace {workspace}")
    emit({"deleted": str(limit_id)}, args.json)
    return 0


def _scoped(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", required=True, help="the workspace's id (ledger workspaces list)")
    parser.add_argument("--scope", choices=SCOPE_TYPES, default="workspace")
    parser.add_argument("--scope-id", help="the project, member, key or end user (not for a workspace scope)")
    parser.add_argument("--model", help="only this model or pattern ('*' any run of characters)")


def add_commands(commands: Any, json_flag: argparse.ArgumentParser) -> None:
    group = commands.add_parser("budgets", help="a workspace's budgets").add_subparsers(
        dest="budgets_command", required=True
    )
    create = group.add_parser("create", help="cap what a scope may spend per UTC period", parents=[json_flag])
    _scoped(create)
    create.add_argument("--amount", required=True, help="credits per period")
    create.add_argument("--period", choices=PERIODS, default="monthly")
    create.add_argument("--soft", action="store_true", help="serve past the amount and alert (default: refuse)")
    create.add_argument("--alert-thresholds", help="percents, comma-separated (default 50,80,100)")
    create.set_defaults(func=cmd_budget_create)
    listing = group.add_parser("list", help="budgets with what each has spent and has left", parents=[json_flag])
    listing.add_argument("--workspace", required=True)
    listing.set_defaults(func=cmd_budget_list)
    delete = group.add_parser("delete", help="delete a budget", parents=[json_flag])
    delete.add_argument("--workspace", required=True)
    delete.add_argument("id")
    delete.set_defaults(func=cmd_budget_delete)

    limits = commands.add_parser("rate-limits", help="a workspace's rate limits").add_subparsers(
        dest="rate_limits_command", required=True
    )
    create = limits.add_parser("create", help="limit requests, tokens or concurrency of a scope", parents=[json_flag])
    _scoped(create)
    create.add_argument("--preset", help="follow a named preset (free, standard, pro, enterprise)")
    create.add_argument("--strategy", choices=STRATEGIES, default="sliding_window")
    create.add_argument("--requests", type=int)
    create.add_argument("--window-seconds", type=int)
    create.add_argument("--tokens-per-minute", type=int)
    create.add_argument("--max-concurrent", type=int)
    create.set_defaults(func=cmd_limit_create)
    listing = limits.add_parser("list", help="rate limits with their effective numbers", parents=[json_flag])
    listing.add_argument("--workspace", required=True)
    listing.set_defaults(func=cmd_limit_list)
    delete = limits.add_parser("delete", help="delete a rate limit", parents=[json_flag])
    delete.add_argument("--workspace", required=True)
    delete.add_argument("id")
    delete.set_defaults(func=cmd_limit_delete)

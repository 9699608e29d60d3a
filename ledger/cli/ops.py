"""`ledger ops`: the psql ops queries, listed or run through psql."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.cli.output import table
from ledger.db.pool import database_url
from ledger.ops import OpsError, find_query, list_queries, run_query
from ledger.settings import Settings


def cmd_ops(settings: Settings, args: argparse.Namespace) -> int:
    if args.name is None:
        rows = [
            {"name": q.name, "variables": ", ".join(q.variables) or "-", "answers": q.description}
            for q in list_queries()
        ]
        print(table(rows))
        print("\nrun one: ledger ops NAME [--var name=value ...]")
        return 0
    query = find_query(args.name)
    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise OpsError(f"--var takes name=value, got {item!r}")
        variables[name] = value
    with database_url(settings) as url:
        return run_query(url, query, variables)


def add_commands(commands: Any) -> None:
    ops = commands.add_parser("ops", help="list the psql ops queries, or run one")
    ops.add_argument("name", nargs="?")
    ops.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a psql variable")
    ops.set_defaults(func=cmd_ops)

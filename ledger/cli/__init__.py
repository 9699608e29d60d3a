"""The `ledger` command: the database, the service, the operator's levers and the ops queries."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ledger.cli import admin, ops, service
from ledger.db.embedded import EmbeddedPostgresError
from ledger.db.migrations import MigrationError
from ledger.db.schema import SchemaError
from ledger.errors import LedgerError
from ledger.ops import OpsError
from ledger.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    service.add_commands(commands)
    admin.add_commands(commands)
    ops.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["db", "psql"]:
        # everything after is psql's own, options included (argparse would take `-c` as ours)
        args = build_parser().parse_args(argv[:2])
        args.psql_args = argv[2:]
    else:
        args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        return int(args.func(settings, args))
    except MigrationError as exc:
        print(f"ledger: migration refused: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"ledger: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 1
    except (OpsError, SchemaError, EmbeddedPostgresError) as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return 1

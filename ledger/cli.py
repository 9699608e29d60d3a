"""The `ledger` command: migrate, the embedded database, the service, and the admin operations."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from ledger import credits, gateway_keys, users
from ledger.database import database_url
from ledger.embedded import EmbeddedPostgres, binaries_dir
from ledger.errors import LedgerError
from ledger.migrations import MigrationError, migrate_url
from ledger.settings import Settings


def _json(value: Any) -> str:
    return json.dumps(value, default=str, indent=2)


def _with_connection(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    async def run(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    with database_url(settings) as url:
        return asyncio.run(run(url))


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        applied = asyncio.run(migrate_url(url))
    for migration in applied:
        print(f"applied {migration.path.name}")
    if not applied:
        print("database is up to date")
    return 0


def cmd_db_url(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.database_url is not None:
        print(settings.database_url.get_secret_value())
        return 0
    server = EmbeddedPostgres(settings.data_dir)
    if server.start():
        print(
            f"started the embedded PostgreSQL in {server.data_dir}; `ledger db stop` stops it",
            file=sys.stderr,
        )
    print(server.url())
    return 0


def cmd_db_stop(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.database_url is not None:
        print("LEDGER_DATABASE_URL is set: that server is not managed here", file=sys.stderr)
        return 1
    EmbeddedPostgres(settings.data_dir).stop()
    return 0


def cmd_db_psql(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        return subprocess.call([str(binaries_dir() / "psql"), url, *args.psql_args])


def _first_call_help(base: str) -> str:
    return f"""
No LEDGER_PROVIDERS configured: requests go to the built-in `demo` provider (deterministic replies,
billed at real model prices). In another terminal (source .venv/bin/activate first):

  ledger users create --email you@example.com        # a trial account with 100 credits this month
  ledger keys create USER_ID                           # prints an sk-lg-... key, once
  curl {base}/v1/chat/completions -H "Authorization: Bearer sk-lg-..." \\
       -H "Content-Type: application/json" \\
       -d '{{"model": "gpt-3.5-turbo", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  curl {base}/v1/credits/balance -H "Authorization: Bearer sk-lg-..."
"""


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    with database_url(settings) as url:
        should_migrate = settings.migrate_on_start
        if should_migrate is None:
            should_migrate = settings.database_url is None
        if should_migrate:
            for migration in asyncio.run(migrate_url(url)):
                print(f"applied {migration.path.name}", file=sys.stderr)
        base = f"http://{host}:{port}"
        print(f"credit ledger serving on {base} (health: /healthz, readiness: /readyz)", file=sys.stderr)
        if settings.providers is None:
            print(_first_call_help(base), file=sys.stderr)
        uvicorn.run(create_app(settings, url, port=port), host=host, port=port, log_level="info", lifespan="on")
    return 0


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    user = _with_connection(settings, lambda db: users.create_user(db, args.email, args.tier, args.power_level))
    print(_json(user))
    return 0


def cmd_users_show(settings: Settings, args: argparse.Namespace) -> int:
    print(_json(_with_connection(settings, lambda db: users.get_account(db, args.user_id))))
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    key = _with_connection(settings, lambda db: gateway_keys.create_key(db, args.user_id, args.name))
    print(_json({"id": key.id, "key": key.key, "prefix": key.prefix, "name": key.name}))
    print("the key is shown only now; store it", file=sys.stderr)
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    if not _with_connection(settings, lambda db: gateway_keys.revoke_key(db, args.key_id)):
        print(f"no active key {args.key_id}", file=sys.stderr)
        return 1
    print(_json({"id": args.key_id, "revoked": True}))
    return 0


def cmd_credits_add(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_connection(
        settings,
        lambda db: credits.add_user_credits(db, args.user_id, args.amount, args.type, args.reference, args.description),
    )
    print(
        _json(
            {
                "success": result.success,
                "new_balance": result.new_balance,
                "transaction_id": result.transaction_id,
            }
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply pending SQL migrations").set_defaults(func=cmd_migrate)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    db.add_parser("url", help="print a URL psql accepts (starts the embedded server if needed)").set_defaults(
        func=cmd_db_url
    )
    db.add_parser("stop", help="stop the embedded server").set_defaults(func=cmd_db_stop)
    psql = db.add_parser("psql", help="open psql on the ledger database")
    psql.add_argument("psql_args", nargs=argparse.REMAINDER)
    psql.set_defaults(func=cmd_db_psql)

    user_cmds = commands.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    create = user_cmds.add_parser("create", help="create an account")
    create.add_argument("--email")
    create.add_argument("--tier", default="trial")
    create.add_argument("--power-level", default="balanced")
    create.set_defaults(func=cmd_users_create)
    show = user_cmds.add_parser("show", help="balance, allowance, tier and power level")
    show.add_argument("user_id")
    show.set_defaults(func=cmd_users_show)

    key_cmds = commands.add_parser("keys", help="gateway API keys").add_subparsers(dest="keys_command", required=True)
    key_create = key_cmds.add_parser("create", help="create a key for a user (shown once)")
    key_create.add_argument("user_id")
    key_create.add_argument("--name")
    key_create.set_defaults(func=cmd_keys_create)
    key_revoke = key_cmds.add_parser("revoke", help="revoke a key")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=cmd_keys_revoke)

    credit_cmds = commands.add_parser("credits", help="credit grants").add_subparsers(
        dest="credits_command", required=True
    )
    add = credit_cmds.add_parser("add", help="add credits (bonus or admin adjustment)")
    add.add_argument("user_id")
    add.add_argument("amount", help="a decimal number of credits")
    add.add_argument("--type", choices=["bonus", "admin_adjustment"], default="bonus")
    add.add_argument("--reference", help="makes the grant idempotent: the same reference is applied once")
    add.add_argument("--description")
    add.set_defaults(func=cmd_credits_add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())

"""`ledger migrate`, `ledger db ...` and `ledger serve`."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger.db.embedded import EmbeddedPostgres, binaries_dir
from ledger.db.migrations import migrate_url
from ledger.db.pool import database_url, psql_environment
from ledger.db.schema import generate_schema, schema_path
from ledger.settings import Settings


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
        print(f"started the embedded PostgreSQL in {server.data_dir}; `ledger db stop` stops it", file=sys.stderr)
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
        command, env = psql_invocation(url, *args.psql_args)
        return subprocess.call(command, env=env)


def cmd_db_schema(_settings: Settings, args: argparse.Namespace) -> int:
    """From a throw-away server, whatever LEDGER_DATABASE_URL says: the migrations alone decide."""
    target = Path(args.output) if args.output else schema_path()
    target.write_text(generate_schema(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


def psql_invocation(url: str, *psql_args: str) -> tuple[list[str], dict[str, str]]:
    """`ledger db psql`'s child: the password goes in its environment, never on its command line."""
    bare, env = psql_environment(url)
    return [str(binaries_dir() / "psql"), bare, *psql_args], env


def first_call_help(base: str) -> str:
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
    from ledger.logs import configure_logging

    configure_logging()
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
            print(first_call_help(base), file=sys.stderr)
        uvicorn.run(
            create_app(settings, url, port=port), host=host, port=port, lifespan="on", access_log=False, log_config=None
        )
    return 0


def add_commands(commands: Any) -> None:
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
    schema = db.add_parser("schema", help="write sql/schema.sql: every migration applied to an empty database")
    schema.add_argument("--output", help="another file to write (default: sql/schema.sql)")
    schema.set_defaults(func=cmd_db_schema)

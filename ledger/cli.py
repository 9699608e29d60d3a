"""The `ledger` command: migrate, the embedded database, and the service."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Sequence

from ledger.database import database_url
from ledger.embedded import EmbeddedPostgres, binaries_dir
from ledger.migrations import MigrationError, migrate_url
from ledger.settings import Settings


def _embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        applied = asyncio.run(migrate_url(url))
    if applied:
        for migration in applied:
            print(f"applied {migration.path.name}")
    else:
        print("database is up to date")
    return 0


def cmd_db_url(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.database_url is not None:
        print(settings.database_url.get_secret_value())
        return 0
    server = _embedded(settings)
    if server.start():
        print(
            f"started the embedded PostgreSQL in {server.data_dir}; stop it with `ledger db stop`",
            file=sys.stderr,
        )
    print(server.url())
    return 0


def cmd_db_stop(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.database_url is not None:
        print("LEDGER_DATABASE_URL is set: that server is not managed here", file=sys.stderr)
        return 1
    _embedded(settings).stop()
    return 0


def cmd_db_psql(settings: Settings, args: argparse.Namespace) -> int:
    """psql on the ledger database; the embedded one keeps running until the session ends."""
    with database_url(settings) as url:
        return subprocess.call([str(binaries_dir() / "psql"), url, *args.psql_args])


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
        print(
            f"credit ledger serving on http://{host}:{port} (health: /healthz, readiness: /readyz)",
            file=sys.stderr,
        )
        uvicorn.run(create_app(settings, url), host=host, port=port, log_level="info", lifespan="on")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        return int(args.func(settings, args))
    except MigrationError as exc:
        print(f"ledger: migration refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

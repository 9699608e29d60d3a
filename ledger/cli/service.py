"""`ledger migrate`, `ledger db ...` and `ledger serve`."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ledger.db.embedded import EmbeddedPostgres, binaries_dir
from ledger.db.migrations import migrate_url
from ledger.db.pool import database_url, psql_environment
from ledger.db.schema import generate_schema, schema_path
from ledger.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

# What each `ledger serve --workers N` worker process runs (uvicorn imports it by name).
WORKER_APP = "ledger.cli.service:worker_app"


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
No LEDGER_PROVIDERS configured: requests go to the built-in demo provider (`demo` for OpenAI's APIs,
`demo-anthropic` for Anthropic's Messages; deterministic replies with cached tokens, billed at real
model prices). In another terminal (source .venv/bin/activate first):

  ledger users create --email you@example.com        # a trial account with 100 credits this month
  ledger keys create USER_ID                           # prints an sk-lg-... key, once
  curl {base}/v1/chat/completions -H "Authorization: Bearer sk-lg-..." \\
       -H "Content-Type: application/json" \\
       -d '{{"model": "gpt-3.5-turbo", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  curl {base}/v1/credits/balance -H "Authorization: Bearer sk-lg-..."

Then open {base}/dashboard and sign in with that key: balance, usage chart, requests, buying
credits (set LEDGER_STRIPE_SECRET_KEY=sk_test_... for Stripe's test mode) and keys. Operators: set
LEDGER_ADMIN_TOKEN and open {base}/admin/dashboard.
"""


def imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def server_stack() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools (uvicorn[standard]) where they
    import, else the pure-Python asyncio and h11, which serve the same, slower."""
    return ("uvloop" if imports("uvloop") else "asyncio", "httptools" if imports("httptools") else "h11")


# The pid of `ledger serve`, in its workers' environment: a worker whose parent is gone exits.
PARENT_PID_VARIABLE = "LEDGER_SERVE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_environment(url: str, host: str, port: int, session_secret: str) -> dict[str, str]:
    """What a worker reads to build the app the parent would have built: the database the parent
    started or was given, the address served (the demo provider's base URL is on it), and the
    secret that signs dashboard sessions (one for all workers, or a session would work on one
    worker only); and the parent's pid (die_with_parent)."""
    return {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_HOST": host,
        "LEDGER_PORT": str(port),
        "LEDGER_SESSION_SECRET": session_secret,
        PARENT_PID_VARIABLE: str(os.getpid()),
    }


def die_with_parent() -> None:
    """A worker ends with `ledger serve`, however it ends: killed by SIGKILL, the parent cannot
    stop its workers, which would go on serving the port (and the next start would find the
    address in use). On Linux the kernel sends the worker SIGTERM when its parent dies (uvicorn
    then shuts it down cleanly); a parent already gone by then is caught by comparing pids. Other
    systems: a thread watches the parent's pid."""
    parent = int(os.environ.get(PARENT_PID_VARIABLE, "0")) or os.getppid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def worker_app() -> Starlette:
    """One worker's app. Workers are fresh interpreters (spawned), so they read everything from the
    environment: `ledger serve` puts the database URL there (see cmd_serve). Each worker has its own
    pool and its own maintenance loop; the loop is safe in several processes (a run takes an advisory
    lock and a worker that cannot get it skips its turn, ledger/money/maintenance.py)."""
    from api.app import create_app
    from ledger.logs import configure_logging

    configure_logging()
    die_with_parent()
    settings = Settings()
    if settings.database_url is None:
        raise RuntimeError("a worker needs LEDGER_DATABASE_URL; run workers with `ledger serve --workers N`")
    return create_app(settings, settings.database_url.get_secret_value(), port=settings.port)


def exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (docker stop, systemd) unwinds like Ctrl-C, so the embedded PostgreSQL this process
    started is stopped on the way out; uvicorn re-raises the signal once it has shut down."""
    raise SystemExit(128 + signum)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from ledger.logs import configure_logging

    if args.workers < 1:
        print("ledger serve: --workers must be 1 or more", file=sys.stderr)
        return 2
    configure_logging()
    host = args.host or settings.host
    port = args.port or settings.port
    loop, http = server_stack()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
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
        # one process serves the app it builds; N workers each build theirs from the environment,
        # which carries the URL (its password too) to them: readable by this user only, never on a
        # command line (ps) and never printed
        app: Any = WORKER_APP
        if args.workers == 1:
            app = create_app(settings.model_copy(update={"host": host, "port": port}), url, port=port)
        else:
            secret = settings.session_secret
            shared = secrets.token_urlsafe(32) if secret is None else secret.get_secret_value()
            os.environ.update(worker_environment(url, host, port, shared))
        uvicorn.run(
            app,
            factory=args.workers > 1,
            workers=args.workers if args.workers > 1 else None,
            host=host,
            port=port,
            loop=loop,
            http=http,
            lifespan="on",
            access_log=False,
            log_config=None,
        )
    return 0


def add_commands(commands: Any) -> None:
    commands.add_parser("migrate", help="apply pending SQL migrations").set_defaults(func=cmd_migrate)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1; about one per core)"
    )
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

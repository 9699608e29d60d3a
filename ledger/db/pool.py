"""Where the database is, and the asyncpg pool onto it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from ledger.db.embedded import EmbeddedPostgres
from ledger.settings import Settings


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one, running for the block."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with EmbeddedPostgres(settings.data_dir).running() as server:
        yield server.url()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    return None


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, command_timeout: float | None = 30.0
) -> asyncpg.Pool:
    # jit off: the ledger's statements are small and hot; JIT compilation only adds latency.
    # command_timeout: a statement stuck (on a lock, a sick server) fails the request instead of
    # hanging it; its transaction rolls back, so nothing is half-written.
    # reset: a connection going back to the pool is rolled back if a transaction was left open
    # (asyncpg always does that), but not sent asyncpg's default RESET ALL / UNLISTEN / CLOSE ALL /
    # pg_advisory_unlock_all: a round trip on every release, for session state this service never
    # leaves behind (settings are SET LOCAL, advisory locks transaction-scoped or unlocked in a
    # finally, no LISTEN, no cursors outside transactions).
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        server_settings={"jit": "off"},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def without_password(url: str) -> tuple[str, str | None]:
    """The URL with its password taken out (of the user part or a `password=` parameter), and the
    password. A child process gets the password in its environment (PGPASSWORD), never on its
    command line, where any user of the machine can read it (ps, /proc/PID/cmdline)."""
    parts = urlsplit(url)
    password = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, secret = userinfo.partition(":")
        if sep:
            password = unquote(secret)
        netloc = f"{user}@{hostport}" if user else hostport
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "password"]
    if len(kept) != len(query):
        password = next(v for k, v in query if k == "password")
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept))), password


def psql_environment(url: str) -> tuple[str, dict[str, str]]:
    """What to run psql with: a URL that carries no password, and an environment that does."""
    bare, password = without_password(url)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return bare, env

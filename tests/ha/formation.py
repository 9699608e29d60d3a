"""A pg_auto_failover formation on this machine: a monitor and two PostgreSQL nodes in synchronous
replication, run by Debian's `pg_autoctl` (postgresql-15-auto-failover) as the `postgres` user.

Each node is a `pg_autoctl create postgres --run` process (its keeper, which starts, watches and
restarts its PostgreSQL); the monitor decides which node is primary. Everything lives under one
temporary directory owned by `postgres` (data directories, pg_autoctl's configuration and state,
the logs), and every port is a free one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.fake_upstream import free_port

PG_BINDIR = Path(os.environ.get("LEDGER_TEST_HA_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"
OWNER = "postgres"  # PostgreSQL refuses to run as root
DATABASE = "ledger"

# The monitor's defaults take ~30 s to fail over (a health check every 5 s, unhealthy after 20 s,
# the old primary given 30 s to demote itself); these take a few seconds. A production monitor can
# use them too on a quiet network: docs/high-availability.md.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",  # ms between the monitor's checks of each node
    "pgautofailover.health_check_timeout": "1000",  # ms a check's connection may take
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",  # ms of failed checks before a failover
    "pgautofailover.primary_demote_timeout": "3000",  # ms the lost primary is given to demote itself
}


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """This node alone (whatever its role), as the test's own checks reach it."""
        return f"postgresql://{OWNER}@127.0.0.1:{self.port}/{DATABASE}"

    def postmaster_pid(self) -> int:
        """The running postmaster's pid: the first line of postmaster.pid in its data directory."""
        return int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])


@dataclass
class Formation:
    root: Path
    monitor_port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    monitor: subprocess.Popen[bytes] | None = None

    # --- running things as postgres -------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        """pg_autoctl keeps its configuration and state under the XDG directories: ours, here."""
        return {
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "HOME": str(self.root),
            "PATH": f"{PG_BINDIR}:/usr/bin:/bin",
            "PG_CONFIG": str(PG_BINDIR / "pg_config"),
            "LANG": "C.UTF-8",
        }

    def command(self, *args: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self._environment().items()]
        prefix = ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []
        return [*prefix, "env", "-i", *env, *args]

    def pg_autoctl(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            self.command(PG_AUTOCTL, *args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"pg_autoctl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def psql(self, port: int, *statements: str, database: str = DATABASE) -> str:
        """Each statement on its own (-c), as the postgres role over TCP (trust)."""
        commands = [arg for statement in statements for arg in ("-c", statement)]
        connection = ["-h", "127.0.0.1", "-p", str(port), "-U", OWNER, "-d", database]
        result = subprocess.run(
            [str(PG_BINDIR / "psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1", *connection, *commands],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql on port {port} failed: {result.stderr}")
        return result.stdout.strip()

    def _background(self, log: Path, *args: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as output:
            return subprocess.Popen(
                self.command(PG_AUTOCTL, *args),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one at the end
            )

    # --- the formation --------------------------------------------------------------------------

    @property
    def monitor_pgdata(self) -> Path:
        return self.root / "monitor"

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def start_monitor(self) -> None:
        self.monitor = self._background(
            self.root / "monitor.log",
            "create",
            "monitor",
            "--pgdata",
            str(self.monitor_pgdata),
            "--pgport",
            str(self.monitor_port),
            "--pgctl",
            str(PG_BINDIR / "pg_ctl"),
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--run",
        )
        self.wait_for(
            lambda: self._answers(
                self.monitor_port, "SELECT count(*) FROM pgautofailover.formation", "pg_auto_failover"
            ),
            60,
            "the monitor to start",
        )
        settings = [f"ALTER SYSTEM SET {name} = {value}" for name, value in MONITOR_SETTINGS.items()]
        self.psql(self.monitor_port, *settings, "SELECT pg_reload_conf()", database="pg_auto_failover")

    def add_node(self, name: str) -> Node:
        node = Node(name, free_port(), self.root / name, self.root / f"{name}.log")
        node.process = self._background(
            node.log,
            "create",
            "postgres",
            "--pgdata",
            str(node.pgdata),
            "--pgport",
            str(node.port),
            "--pgctl",
            str(PG_BINDIR / "pg_ctl"),
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--name",
            name,
            "--dbname",
            DATABASE,
            "--auth",
            "trust",
            "--no-ssl",
            "--monitor",
            self.monitor_uri,
            "--run",
        )
        self.nodes.append(node)
        return node

    def _answers(self, port: int, sql: str, database: str) -> bool:
        try:
            self.psql(port, sql, database=database)
        except AssertionError:
            return False
        return True

    def state(self) -> dict[str, dict[str, Any]]:
        """`pg_autoctl show state`, by node name: current_group_state, assigned_group_state, health..."""
        try:
            shown = self.pg_autoctl("show", "state", "--pgdata", str(self.monitor_pgdata), "--json", timeout=10)
            rows: list[dict[str, Any]] = json.loads(shown)
        except (AssertionError, ValueError, subprocess.TimeoutExpired):
            return {}
        return {row["nodename"]: row for row in rows}

    def roles(self) -> dict[str, str]:
        """Node name -> its state, where the monitor and the node agree on it (else 'moving')."""
        return {
            name: row["current_group_state"] if row["current_group_state"] == row["assigned_group_state"] else "moving"
            for name, row in self.state().items()
        }

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def primary(self) -> Node | None:
        """The node both the monitor and the node itself call primary, with a standby following."""
        roles = self.roles()
        if sorted(roles.values()) != ["primary", "secondary"]:
            return None
        return self.node(next(name for name, role in roles.items() if role == "primary"))

    def wait_for(
        self, ready: Callable[[], object], timeout: float, what: str, nudge: Callable[[], None] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; formation: {self.state()}\n{self.log_tails()}")
            if nudge is not None:
                nudge()
            time.sleep(0.25)

    def start_pair(self) -> Node:
        """node1, then node2 as its synchronous standby; returns the primary."""
        first = self.add_node("node1")
        self.wait_for(lambda: self.roles().get("node1") == "single", 60, "node1 to run alone")
        self.add_node("node2")

        def checkpoint() -> None:
            # the standby's pg_basebackup waits for the primary's next checkpoint, spread over
            # minutes by default (pg_autoctl 2.0 does not ask for a fast one): ask for it now
            if self.roles().get("node2") in ("moving", "catchingup", "wait_standby"):
                with contextlib.suppress(AssertionError):
                    self.psql(first.port, "CHECKPOINT")

        self.wait_for(lambda: self.primary() is not None, 120, "a primary and a secondary", nudge=checkpoint)
        primary = self.primary()
        assert primary is first
        return primary

    def uri(self) -> str:
        """The formation's multi-host URL (`pg_autoctl show uri`), with the role to connect as."""
        shown = self.pg_autoctl("show", "uri", "--pgdata", str(self.monitor_pgdata), "--formation", "default")
        parts = urlsplit(shown.strip())
        return urlunsplit(parts._replace(netloc=f"{OWNER}@{parts.netloc}"))

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.root.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """Each pg_autoctl stops its PostgreSQL on SIGTERM; anything left is killed by its pid."""
        processes = [node.process for node in self.nodes] + [self.monitor]
        for process in processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            if process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            # what is left of the group once its leader is gone (a monitor's listener sometimes
            # misses the SIGTERM and is orphaned)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for pid in self._leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _leftovers(self) -> list[int]:
        """Processes still running with this formation's environment (pg_autoctl, PostgreSQL),
        whatever session they moved to: they inherited XDG_CONFIG_HOME from `command`."""
        mark = f"XDG_CONFIG_HOME={self.root / 'config'}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found


@contextlib.contextmanager
def formation() -> Iterator[Formation]:
    """A running monitor and primary/secondary pair, stopped and deleted after the block (its logs
    are printed if the block failed)."""
    root = Path(tempfile.mkdtemp(prefix="ledger-ha-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OWNER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    root.chmod(0o755)
    running = Formation(root)
    failed = False
    try:
        running.start_monitor()
        running.start_pair()
        yield running
    except BaseException:
        failed = True
        raise
    finally:
        running.stop()
        if failed:
            print(running.log_tails(60))
        shutil.rmtree(root, ignore_errors=True)

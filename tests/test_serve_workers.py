"""`ledger serve --workers N` as an operator runs it: worker processes share the port, each serves
metered requests on the embedded database, and SIGTERM stops them all and the database."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ledger.cli.service import server_stack
from ledger.db.embedded import EmbeddedPostgres
from tests.fake_upstream import free_port

LEDGER = str(Path(sys.executable).parent / "ledger")
ADMIN_TOKEN = "workers-admin-token"
DEMO_CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "ledger-data"
    EmbeddedPostgres(tmp_path / "ledger-data").stop()  # whatever the test left behind


@contextlib.contextmanager
def serving(
    data_dir: Path, workers: int, log: Path, port: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`ledger serve --workers N` on the embedded default, until /healthz answers; killed if the
    block leaves it running."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env = {**clean, "LEDGER_DATA_DIR": str(data_dir), "LEDGER_ADMIN_TOKEN": ADMIN_TOKEN}
    with open(log, "w") as output:
        process = subprocess.Popen(
            [LEDGER, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not answers_healthz(port):
            assert process.poll() is None, f"ledger serve exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"ledger serve did not answer /healthz:\n{log.read_text()}"
            time.sleep(0.2)
        yield process, port
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


def answers_healthz(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def call(connection: http.client.HTTPConnection, method: str, path: str, body: object, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    payload = response.read()
    assert response.status in (200, 201), payload
    return json.loads(payload)


def owner_of(connection: http.client.HTTPConnection, candidates: list[psutil.Process]) -> int:
    """The pid of the process holding the server end of this client connection."""
    client_port = connection.sock.getsockname()[1]
    for process in candidates:
        for conn in process.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return process.pid
    raise AssertionError(f"no candidate process holds the connection from port {client_port}")


def test_two_workers_each_serve_metered_requests_and_sigterm_stops_everything(data_dir, tmp_path):
    log = tmp_path / "serve.log"
    with serving(data_dir, 2, log) as (process, port):
        parent = psutil.Process(process.pid)
        children = parent.children()  # the workers, and multiprocessing's resource tracker
        database_url = EmbeddedPostgres(data_dir).url()
        password = EmbeddedPostgres(data_dir).password_file.read_text().strip()
        connect = lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # noqa: E731
        admin = connect()
        user = call(admin, "POST", "/admin/users", {}, ADMIN_TOKEN)
        key = call(admin, "POST", f"/admin/users/{user['user_id']}/keys", {}, ADMIN_TOKEN)["key"]

        # The kernel hands each new connection to one of the processes waiting on the shared socket:
        # open connections (kept open) until two different workers hold one.
        by_worker: dict[int, http.client.HTTPConnection] = {}
        opened = [admin]
        for _ in range(200):
            connection = connect()
            opened.append(connection)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            by_worker.setdefault(owner_of(connection, [parent, *children]), connection)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "every connection went to the same worker"
        assert process.pid not in by_worker, "the parent supervises; it serves nothing"

        # a metered call on each worker: its own pool onto the embedded database, and the demo
        # provider's base URL pointing at the port the workers share
        replies = [
            call(connection, "POST", "/v1/chat/completions", DEMO_CHAT, key) for connection in by_worker.values()
        ]
        for connection in opened:
            connection.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()

    assert [r["choices"][0]["message"]["content"] for r in replies] == [
        "Hello from the demo provider. You said: Hello"
    ] * 2
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "every child of the service exits with it"
    assert EmbeddedPostgres(data_dir).running_port() is None, "the embedded PostgreSQL is stopped"
    printed = log.read_text()
    assert database_url not in printed and password not in printed, "the database URL is never printed"
    access = [json.loads(line) for line in printed.splitlines() if '"logger": "ledger.access"' in line]
    metered = [line for line in access if line["path"] == "/v1/chat/completions"]
    assert len(metered) == 2 and len({line["request_id"] for line in metered}) == 2, "each request is logged once"


def test_sigterm_stops_a_single_process_service_and_its_embedded_database(data_dir, tmp_path):
    with serving(data_dir, 1, tmp_path / "serve.log") as (process, _port):
        assert EmbeddedPostgres(data_dir).running_port() is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM  # what a shell reports for SIGTERM

    assert EmbeddedPostgres(data_dir).running_port() is None


def test_the_service_runs_on_uvloop_and_httptools():
    """uvicorn[standard] brings them; without them the service would serve, several times slower."""
    assert server_stack() == ("uvloop", "httptools")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_workers_end_with_a_parent_killed_by_sigkill_and_the_next_start_takes_over_the_database(data_dir, tmp_path):
    """SIGKILL leaves the parent no chance to stop anything: its workers once served the port on,
    the next start failed with "address in use", and the embedded PostgreSQL it had started was
    never stopped again (each later start found it running and left it running)."""
    with serving(data_dir, 2, tmp_path / "first.log") as (process, port):
        workers = psutil.Process(process.pid).children()
        assert len(workers) >= 2
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        _gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, "every worker ends with its parent"
    deadline = time.monotonic() + 10
    while not port_is_free(port):
        assert time.monotonic() < deadline, "the port is still held"
        time.sleep(0.2)
    assert EmbeddedPostgres(data_dir).running_port() is not None, "its database outlived the SIGKILL"

    with serving(data_dir, 1, tmp_path / "second.log", port=port) as (process, again):
        assert again == port and answers_healthz(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM

    assert EmbeddedPostgres(data_dir).running_port() is None, "the start that took it over stopped it"


def test_a_database_started_on_purpose_outside_serve_is_left_running(data_dir, tmp_path):
    """`ledger db url` starts the embedded server for psql and says `ledger db stop` stops it: a
    later `ledger serve` uses it and leaves it running."""
    EmbeddedPostgres(data_dir).start()
    with serving(data_dir, 1, tmp_path / "serve.log") as (process, _port):
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    assert EmbeddedPostgres(data_dir).running_port() is not None

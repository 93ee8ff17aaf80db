"""Many connections at once: HC_MAX_CONNECTIONS, and running out of file descriptors.

Each test starts `python -m hcserver serve` with a low open-file limit (ulimit -n), holds many
client connections open against it, and reads its log and `/api/v3/status/?verbose=1`.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.persistence.helpers import ROOT

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-key-for-tests-0123456789"


@contextmanager
def server(tmp_path: Path, open_files: int | None = None, **environ: str) -> Iterator[tuple[int, Path]]:
    """A server process with this soft open-file limit; (port, log path). SIGTERM at the end."""

    def limit_open_files() -> None:
        if open_files is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    env = dict(os.environ, HC_ADMIN_KEY=ADMIN_KEY, PYTHONPATH=str(ROOT), **environ)
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hcserver", "serve", "--port", "0", "--db", str(tmp_path / "hc.sqlite3")],
            stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp_path, preexec_fn=limit_open_files,
        )  # fmt: skip
    try:
        yield _port(proc, log), log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _port(proc: subprocess.Popen[bytes], log: Path) -> int:
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and b"listening on port" not in out:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    text = out.decode(errors="replace")
    assert "listening on port" in text, text + log.read_text()
    return int(text.split("listening on port")[1].split(";")[0])


def status(port: int) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/v3/status/?verbose=1", headers={"X-Api-Key": ADMIN_KEY})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def status_once_there_is_room(port: int) -> tuple[Any, int]:
    """The verbose status, and how many attempts were refused before it: right after clients close
    their connections, the server may not have seen them go yet."""
    refused = 0
    while True:
        try:
            code, details = status(port)
            assert code == 200
            return details, refused
        except (ConnectionError, http.client.RemoteDisconnected):
            refused += 1
            assert refused < 100, "no room for the status request"
            time.sleep(0.05)


def wait_until(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed this connection (without the client having sent anything)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_out_of_file_descriptors_is_logged_once_a_second_and_the_server_recovers(tmp_path):
    clients: list[socket.socket] = []
    with server(tmp_path, open_files=64, HC_MAX_CONNECTIONS="100000") as (port, log), ExitStack() as stack:
        # More connections than the server has descriptors for; the kernel queues those it cannot take.
        for _ in range(120):
            clients.append(stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)))
        wait_until(lambda: "Too many open files" in log.read_text(), 10, "never ran out of descriptors")
        time.sleep(2.5)  # out of descriptors all along (unthrottled: 20 MB, 32,000 tracebacks in this test)
        for client in clients:
            client.close()

        wait_until(lambda: _answers(port), 10, "no answer after the clients left")
        time.sleep(1.1)  # the end of the failures is reported at the first connection a second on
        code, details = status(port)
        text = log.read_text()
        assert "Traceback" not in text and len(text) < 20_000
        reports = [line for line in text.splitlines() if "cannot accept connections" in line]
        assert 1 <= len(reports) <= 5, reports  # once a second, at most, over about 3 s
        assert text.count("accepting connections again") == 1
        assert code == 200 and details["connections"]["accept_errors"] > 0


def _answers(port: int) -> bool:
    try:
        return status(port)[0] == 200
    except OSError:
        return False


def test_max_connections_refuses_the_next_connection_and_counts_it(tmp_path):
    with server(tmp_path, HC_MAX_CONNECTIONS="5") as (port, log):
        held = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(5)]
        for conn in held:
            conn.request("GET", "/api/v3/status/")
            assert conn.getresponse().read() == b"OK"  # accepted, and kept open

        with socket.create_connection(("127.0.0.1", port), timeout=5) as sixth:
            wait_until(lambda: closed_by_server(sixth), 2, "the sixth connection was not closed at once")
        for conn in held:  # the five are still served
            conn.request("GET", "/api/v3/status/")
            assert conn.getresponse().read() == b"OK"

        held.pop().close()
        details, refused_meanwhile = status_once_there_is_room(port)
        assert details["connections"] == {"open": 5, "max": 5, "refused": 1 + refused_meanwhile, "accept_errors": 0}
        assert "refused a connection: 5 open" in log.read_text()
        for conn in held:
            conn.close()


def test_by_default_the_cap_leaves_64_descriptors_so_the_server_never_runs_out(tmp_path):
    with server(tmp_path, open_files=200) as (port, log), ExitStack() as stack:
        clients = [stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)) for _ in range(150)]
        refused: set[int] = set()

        def refused_are(n: int) -> bool:
            refused.update(i for i, c in enumerate(clients) if i not in refused and closed_by_server(c))
            return len(refused) >= n

        wait_until(lambda: refused_are(150 - 136), 10, "the connections past the cap were not refused")
        time.sleep(0.3)
        assert not refused_are(150 - 136 + 1)
        for client in clients:
            client.close()
        details, refused_meanwhile = status_once_there_is_room(port)
        counts = details["connections"]
        assert (counts["max"], counts["refused"], counts["accept_errors"]) == (200 - 64, 14 + refused_meanwhile, 0)
        assert "cannot accept" not in log.read_text()

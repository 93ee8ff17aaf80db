"""The wire against `python -m hcserver serve` as a real process: a 100 MB ping body streams through
without the server's memory growing with it, and SIGTERM stops accepting, answers the request in
flight, closes idle keep-alive connections and exits 0.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.http.wire import build, connect
from tests.persistence.serve_process import API_KEY, Server, start

pytestmark = pytest.mark.slow


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def create_check(server: Server, name: str) -> str:
    with connect(server.port) as c:
        r = c.request(build("POST", "/api/v3/checks/", f'{{"name": "{name}"}}'.encode(), (("X-Api-Key", API_KEY),)))
        assert r.status == 201, r
        return str(r.json()["uuid"])


def n_pings(port: int, uuid: str) -> int:
    with connect(port) as c:
        return int(
            c.request(build("GET", f"/api/v3/checks/{uuid}", headers=(("X-Api-Key", API_KEY),))).json()["n_pings"]
        )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_a_100_mb_body_streams_through_in_flat_memory(tmp_path: Path):
    size = 100 << 20
    server = start(tmp_path / "hc.sqlite3", tmp_path, environ={"HC_MAX_REQUEST_BODY": str(200 << 20)})
    try:
        uuid = create_check(server, "big")
        with connect(server.port, timeout=10) as c:
            assert c.request(build("POST", f"/ping/{uuid}/log", b"warm up" * 2000)).status == 200
            before = peak = rss_kib(server.proc.pid)
            c.send(build("POST", f"/ping/{uuid}/log", headers=(("Content-Length", str(size)),)))
            block = bytes(range(256)) * 4096  # 1 MiB
            for i in range(size // len(block)):
                c.send(block)
                if i % 4 == 0:
                    peak = max(peak, rss_kib(server.proc.pid))
            r = c.read_response()
            assert (r.status, r.body) == (200, b"OK")
            peak = max(peak, rss_kib(server.proc.pid))
        assert peak - before < 30 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"
        assert n_pings(server.port, uuid) == 2
        with connect(server.port) as c:
            r = c.request(build("GET", f"/api/v3/checks/{uuid}/pings/2/body", headers=(("X-Api-Key", API_KEY),)))
            assert r.body == block[:10_000]
    finally:
        server.stop()


def refused(port: int) -> bool:
    """True once a new connection gets no answer: refused, or accepted by the kernel just before the
    listener closed and then closed unanswered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /api/v3/status/ HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100) == b""
    except OSError:
        return True


def test_sigterm_stops_accepting_closes_idle_connections_and_exits_0(tmp_path: Path):
    db = tmp_path / "hc.sqlite3"
    server = start(db, tmp_path)
    try:
        uuid = create_check(server, "idle")
        with connect(server.port) as idle:
            assert idle.request(build("POST", f"/ping/{uuid}", b"before the stop")).status == 200
            server.proc.send_signal(signal.SIGTERM)
            assert idle.wait_closed(5) == b""
            assert refused(server.port)
        assert server.proc.wait(timeout=10) == 0, server.log.read_text()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    server = start(db, tmp_path)
    try:
        assert n_pings(server.port, uuid) == 1
    finally:
        server.stop()

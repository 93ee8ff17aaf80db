"""A full disk, for real: a small tmpfs holds the store (see conftest.small_fs), fills up under pings
with real bodies, and gets its space back. Every ping answered 200 must be in the store afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.persistence.helpers import fill
from tests.persistence.test_process import Server, start

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-key-for-the-disk-tests"
BODY = 9000
CHECKS = 20
LIMIT = 100  # PING_LOG_LIMIT, the default


def body(check: int, n: int) -> bytes:
    head = b"check %d ping %d " % (check, n)
    return head + b"x" * (BODY - len(head))


class Pinger(threading.Thread):
    """POSTs bodies to its own checks, round robin, over one keep-alive connection, for `seconds`.

    Each check belongs to one pinger, so the n-th ping a check gets carries body(check, n)."""

    def __init__(self, port: int, checks: dict[int, str], seconds: float, timeout: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.port, self.checks, self.seconds, self.timeout = port, checks, seconds, timeout
        self.acked = dict.fromkeys(checks, 0)
        self.answered_at: list[float] = []
        self.refused: list[int] = []  # statuses other than 200: none is expected

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline:
                for i, uuid in self.checks.items():
                    conn.request("POST", f"/ping/{uuid}", body=body(i, self.acked[i] + 1))
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        self.refused.append(response.status)
                        return
                    self.acked[i] += 1
                    self.answered_at.append(time.monotonic())
        except OSError:
            return  # a client that gave up (timeout): that ping was not acknowledged
        finally:
            conn.close()


def verbose(server: Server) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/api/v3/status/?verbose=1", headers={"X-Api-Key": ADMIN_KEY})
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def assert_everything_stored(server: Server, uuids: dict[int, str], acked: dict[int, int], limit: int = LIMIT) -> None:
    for i, uuid in uuids.items():
        check = server.api("GET", f"checks/{uuid}")
        assert check["n_pings"] == acked[i], (i, check["n_pings"], acked[i])
        listed = server.api("GET", f"checks/{uuid}/pings/")["pings"]
        assert [p["n"] for p in listed] == list(range(acked[i], max(0, acked[i] - limit), -1))
        for n in {acked[i], max(1, acked[i] - limit + 1)} if acked[i] else ():
            status, stored = server.request("GET", f"/api/v3/checks/{uuid}/pings/{n}/body", api=True)
            assert (status, stored) == (200, body(i, n))


def stream_until_full(
    fs: Path, tmp_path: Path, *extra: str, environ: dict[str, str] | None = None
) -> tuple[Server, dict[int, str], list[Pinger], Path]:
    db = fs / "hc.sqlite3"
    server = start(db, tmp_path, *extra, environ={"HC_ADMIN_KEY": ADMIN_KEY, **(environ or {})})
    # One more check than the pingers use, for a client of its own.
    uuids = {i: server.create_check(f"job {i}") for i in range(CHECKS + 1)}
    wait_until(lambda: verbose(server)["pending"] == 0, 10, "the checks were never written")
    filler = fill(fs, leave_bytes=3 << 20)
    pingers = [Pinger(server.port, {i: uuids[i] for i in range(k, CHECKS, 4)}, seconds=4) for k in range(4)]
    for p in pingers:
        p.start()
    return server, uuids, pingers, filler


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill-after-recovery"])
def test_pings_answered_while_the_disk_was_full_are_all_stored_once_it_has_room(
    small_fs: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    server, uuids, pingers, filler = stream_until_full(small_fs, tmp_path)
    try:
        wait_until(lambda: not verbose(server)["ok"], 10, "the disk never filled up")
        status = verbose(server)
        assert "full" in str(status["error"])
        # The backlog in changes and in bytes, each beside its limit.
        assert int(status["pending_bytes"]) > BODY and status["max_pending_bytes"] == 256 << 20
        assert int(status["pending"]) > 0 and status["max_pending"] == 200_000
        for p in pingers:
            p.join(15)
        assert not [p.refused for p in pingers if p.refused]
        acked = {CHECKS: 0, **{i: n for p in pingers for i, n in p.acked.items()}}
        assert sum(acked.values()) > CHECKS * LIMIT * 2  # far more than the disk had room for

        filler.unlink()
        wait_until(lambda: (s := verbose(server))["ok"] and s["pending"] == 0, 30, "never caught up")
        assert_everything_stored(server, uuids, acked)
    finally:
        stopped_in = server.stop(stop)
    if stop == signal.SIGTERM:
        assert server.proc.returncode == 0 and stopped_in < 10
        assert "not written" not in server.log.read_text()

    server = start(small_fs / "hc.sqlite3", tmp_path)
    try:
        assert_everything_stored(server, uuids, acked)
    finally:
        server.stop(signal.SIGTERM)


def test_durable_pings_wait_on_a_full_disk_and_are_answered_once_committed(small_fs: Path, tmp_path: Path) -> None:
    server, uuids, pingers, filler = stream_until_full(small_fs, tmp_path, "--durable")
    try:
        wait_until(lambda: not verbose(server)["ok"], 10, "the disk never filled up")
        # A client that gives up gets no answer, so nothing it was told can be lost.
        quitter = Pinger(server.port, {CHECKS: uuids[CHECKS]}, seconds=0.5, timeout=0.5)
        quitter.run()
        assert quitter.acked[CHECKS] == 0
        time.sleep(1)
        stuck = sum(len(p.answered_at) for p in pingers)
        time.sleep(1)
        assert sum(len(p.answered_at) for p in pingers) == stuck  # waiting, not answered
        freed_at = time.monotonic()
        filler.unlink()
        for p in pingers:
            p.join(30)
        assert any(t > freed_at for p in pingers for t in p.answered_at)  # answered once committed
        assert not [p.refused for p in pingers if p.refused]
        acked = {CHECKS: 0, **{i: n for p in pingers for i, n in p.acked.items()}}
    finally:
        server.stop(signal.SIGKILL)

    server = start(small_fs / "hc.sqlite3", tmp_path)
    try:
        for i, uuid in uuids.items():
            assert server.api("GET", f"checks/{uuid}")["n_pings"] >= acked[i]
    finally:
        server.stop(signal.SIGTERM)


def test_a_disk_given_back_only_a_little_room_catches_up(small_fs: Path, tmp_path: Path) -> None:
    # A short ping log keeps the store small; 8 MB are given back, far less than the backlog holds.
    server, uuids, pingers, filler = stream_until_full(small_fs, tmp_path, environ={"PING_LOG_LIMIT": "5"})
    try:
        wait_until(lambda: not verbose(server)["ok"], 10, "the disk never filled up")
        for p in pingers:
            p.join(15)
        assert not [p.refused for p in pingers if p.refused]
        acked = {CHECKS: 0, **{i: n for p in pingers for i, n in p.acked.items()}}
        os.truncate(filler, filler.stat().st_size - (8 << 20))
        wait_until(lambda: (s := verbose(server))["ok"] and s["pending"] == 0, 30, "never caught up")
        assert_everything_stored(server, uuids, acked, limit=5)
    finally:
        server.stop(signal.SIGKILL)
    server = start(small_fs / "hc.sqlite3", tmp_path, environ={"PING_LOG_LIMIT": "5"})
    try:
        assert_everything_stored(server, uuids, acked, limit=5)
    finally:
        server.stop(signal.SIGTERM)

"""The wire with the whole Runtime and its SQLite store behind it: in durable mode pipelined pings are
answered in order, each only once committed; under backpressure (HC_MAX_PENDING reached) a ping is
not answered until there is room, and meanwhile the server reads no more of that connection, so a
client streaming more bytes behind it fills the socket buffers instead of the server's memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import make_settings, start_server
from tests.fakes import FakeClock
from tests.http.wire import build, connect, unanswered_then_stalls
from tests.persistence.helpers import count


def committed(db: Path, uuid: str) -> int:
    """Pings of the check on disk, as another process sees the file."""
    return count(db, "pings", "WHERE check_id = ?", (uuid,))


def test_durable_pipelined_pings_are_answered_in_order_each_after_its_commit(tmp_path: Path, clock: FakeClock):
    db = tmp_path / "hc.sqlite3"
    live, stop = start_server(make_settings(db=str(db), durable=True), clock, alerts={})
    try:
        uuid = live.create(name="durable")["uuid"]
        bodies = [f"run {i}".encode() for i in range(5)]
        with connect(live.server.port) as c:
            c.send(b"".join(build("POST", f"/ping/{uuid}/log", body) for body in bodies))
            for k in range(1, 6):
                r = c.read_response()
                assert (r.status, r.body) == (200, b"OK")
                assert committed(db, uuid) >= k
            # A ping and an API call behind it: the call sees the ping.
            c.send(
                build("GET", f"/ping/{uuid}")
                + build("GET", f"/api/v3/checks/{uuid}/pings/", headers=(("X-Api-Key", "hcw_" + "a" * 28),))
            )
            assert c.read_response().body == b"OK"
            assert committed(db, uuid) == 6
            r = c.read_response()
            assert r.status == 200
            assert [(p["n"], p["type"]) for p in r.json()["pings"]] == [(6, "success")] + [
                (n, "log") for n in range(5, 0, -1)
            ]
        for n, body in enumerate(bodies, 1):
            assert live.api("GET", f"checks/{uuid}/pings/{n}/body").content == body
    finally:
        stop()


def test_a_ping_waiting_for_room_is_not_answered_and_its_connection_not_read(tmp_path: Path, clock: FakeClock):
    # Flushes only when asked to (the interval is a minute, the batch far away): after the check
    # and one ping, max_pending is reached and the next ping waits for room.
    db = tmp_path / "hc.sqlite3"
    settings = make_settings(db=str(db), max_pending=3, flush_interval_ms=60_000, flush_batch=1_000_000)
    live, stop = start_server(settings, clock, alerts={})
    try:
        runtime = live.runtime
        assert runtime is not None
        uuid = live.create(name="backlog")["uuid"]
        follow = 32 << 20  # the body of a ping behind the waiting one
        with connect(live.server.port, timeout=10) as c:
            assert c.request(build("GET", f"/ping/{uuid}/start")).status == 200
            c.send(
                build("GET", f"/ping/{uuid}")
                + build("POST", f"/ping/{uuid}/log", headers=(("Content-Length", str(follow)),))
            )
            assert not c.readable_within(0.3)  # the second ping waits
            # The server stops reading: the socket buffers fill and stay full, far below 32 MB.
            taken = unanswered_then_stalls(c.sock, follow, within=8)
            assert taken < 24 << 20
            assert not c.readable_within(0)
            assert live.get_check(uuid)["n_pings"] == 2  # recorded in memory; only the answer waits

            live.call(lambda: asyncio.ensure_future(runtime.recorder.flush_once()))
            r = c.read_response()
            assert (r.status, r.body) == (200, b"OK")
            c.send(b"x" * (follow - taken))
            r = c.read_response()
            assert (r.status, r.body) == (200, b"OK")
        assert live.get_check(uuid)["n_pings"] == 3
        assert live.api("GET", f"checks/{uuid}/pings/3/body").content == b"x" * 10_000
    finally:
        stop()

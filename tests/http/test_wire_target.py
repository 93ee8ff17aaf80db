"""Wire behaviour where the HTTP layer is stricter or kinder than a plain HTTP/1.1 server must be.

- A request pipelined behind one whose answer ends the connection (`Connection: close`, HTTP/1.0
  without keep-alive, a 414 or 431) must be neither answered nor acted on: the client sees the
  connection close after the first answer, so it will send that request again.
- Chunk extensions (`1a;name=value`) are ignored, as RFC 9112 7.1.1 requires. (llhttp refuses
  whitespace around the `;`, which the RFC allows; no client sends it.)
- On SIGTERM a request in flight is answered before its connection closes.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.http.test_wire_process import create_check, n_pings, refused
from tests.http.wire import api, build, chunked, connect
from tests.persistence.serve_process import API_KEY, start


@pytest.fixture
def checks(live: LiveServer) -> tuple[str, str]:
    return live.create(name="first")["uuid"], live.create(name="behind")["uuid"]


def closing_requests(uuid: str) -> dict[str, bytes]:
    return {
        "ping with Connection: close": build("GET", f"/ping/{uuid}", headers=(("Connection", "close"),)),
        "api call with Connection: close": api("GET", "status/", key="", headers=(("Connection", "close"),)),
        "HTTP/1.0 ping": build("GET", f"/ping/{uuid}", version="HTTP/1.0"),
        "HTTP/1.0 api call": api("GET", f"checks/{uuid}", version="HTTP/1.0"),
        "414": build("GET", "/ping/" + "a" * 9000),
        "431": build("GET", f"/ping/{uuid}", headers=(("X-Big", "b" * 70_000),)),
        # An HTTP/1.0 message with Transfer-Encoding has faulty framing: close after it (RFC 9112 6.1).
        "HTTP/1.0 with Transfer-Encoding": build(
            "POST", f"/ping/{uuid}", headers=(("Transfer-Encoding", "chunked"),), version="HTTP/1.0"
        )
        + chunked(b"x"),
    }


@pytest.mark.parametrize("case", list(closing_requests("u")))
def test_nothing_pipelined_behind_a_closing_answer_is_served(live, checks, case):
    first, behind = checks
    with connect(live.server.port) as c:
        c.send(
            closing_requests(first)[case]
            + build("POST", f"/ping/{behind}/fail", b"must not count")
            + api("POST", "checks/", {"name": "must not exist"})
        )
        r = c.read_response()
        assert r.status < 500
        assert c.wait_closed(3) == b""
    assert live.get_check(behind)["n_pings"] == 0
    assert "must not exist" not in [c["name"] for c in live.api("GET", "checks/").json()["checks"]]


def test_chunk_extensions_are_ignored(live, checks):
    uuid = checks[0]
    pieces = [b"line one\n", b"x" * 5000, b"end"]
    with connect(live.server.port) as c:
        r = c.request(
            build("POST", f"/ping/{uuid}/log", headers=(("Transfer-Encoding", "chunked"),))
            + chunked(pieces[0], extension=";a")[:-5]
            + chunked(pieces[1], extension=";name=value;other")[:-5]
            + chunked(pieces[2], extension=';quoted="va;l\\"ue"')
        )
        assert (r.status, r.body) == (200, b"OK")
    assert live.api("GET", f"checks/{uuid}/pings/1/body").content == b"".join(pieces)


def test_sigterm_answers_the_request_in_flight(tmp_path: Path):
    db = tmp_path / "hc.sqlite3"
    server = start(db, tmp_path)
    try:
        uuid = create_check(server, "in flight")
        with connect(server.port) as idle, connect(server.port) as busy:
            assert idle.request(build("GET", f"/ping/{uuid}/start")).status == 200
            busy.send(build("POST", f"/ping/{uuid}", headers=(("Content-Length", "10"),)) + b"01234")
            time.sleep(0.2)  # the server has the head and half the body
            server.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not refused(server.port):
                assert time.monotonic() < deadline, "still accepting 5 s after SIGTERM"
                time.sleep(0.05)
            busy.send(b"56789")
            r = busy.read_response()
            assert (r.status, r.body) == (200, b"OK")
            assert busy.wait_closed(5) == b""
            assert idle.wait_closed(5) == b""
        assert server.proc.wait(timeout=10) == 0, server.log.read_text()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()

    server = start(db, tmp_path)
    try:
        assert n_pings(server.port, uuid) == 2
        with connect(server.port) as c:
            r = c.request(build("GET", f"/api/v3/checks/{uuid}/pings/2/body", headers=(("X-Api-Key", API_KEY),)))
            assert r.body == b"0123456789"
    finally:
        server.stop()

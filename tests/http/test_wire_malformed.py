"""Malformed and ambiguous requests over raw sockets: each gets `HTTP/1.1 400 Bad Request` and the
connection is closed; never a 5xx, never an answer the client could take for a success, and never a
ping recorded from bytes the sender framed as part of a body (request smuggling: the request after
the bad one names a check of its own, whose n_pings must stay 0). The server serves the next
connection as before.
"""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer
from tests.http.wire import Closed, build, connect

# A request that must never be served: it only follows a request whose framing is in doubt.
VICTIM = "victim"


@pytest.fixture
def checks(live: LiveServer) -> dict[str, str]:
    return {"ping": live.create(name="target")["uuid"], VICTIM: live.create(name=VICTIM)["uuid"]}


def head(uuid: str, *lines: str, method: str = "POST", version: str = "HTTP/1.1") -> bytes:
    return (
        f"{method} /ping/{uuid} {version}\r\nHost: hc.test\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"
    ).encode()


def cases(uuid: str, victim: str) -> dict[str, bytes]:
    smuggled = build("GET", f"/ping/{victim}")
    return {
        "request line without a target or version": b"GARBAGE\r\n\r\n" + smuggled,
        "request line with an unknown version": f"GET /ping/{uuid} HTTP/7.0\r\nHost: x\r\n\r\n".encode() + smuggled,
        "request line with a space in the target": f"GET /ping/{uuid} x HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        + smuggled,
        "NUL byte in the target": f"GET /ping/{uuid}\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode() + smuggled,
        "header line without a colon": head(uuid, "no colon here", method="GET") + smuggled,
        "space between header name and colon": head(uuid, "Content-Length : 5") + b"hello" + smuggled,
        "NUL byte in a header value": head(uuid, "X-Note: a\x00b", method="GET") + smuggled,
        "CR alone in a header value": head(uuid, "X-Note: a\rb", method="GET") + smuggled,
        "chunk size that is not hex": head(uuid, "Transfer-Encoding: chunked") + b"zz\r\nhello\r\n0\r\n\r\n" + smuggled,
        "negative chunk size": head(uuid, "Transfer-Encoding: chunked") + b"-5\r\nhello\r\n0\r\n\r\n" + smuggled,
        "chunk size past 64 bits": head(uuid, "Transfer-Encoding: chunked")
        + b"1"
        + b"0" * 20
        + b"\r\nhello\r\n"
        + smuggled,
        "chunk data not followed by CRLF": head(uuid, "Transfer-Encoding: chunked")
        + b"5\r\nhelloXX0\r\n\r\n"
        + smuggled,
        "negative Content-Length": head(uuid, "Content-Length: -5") + b"hello" + smuggled,
        "non-numeric Content-Length": head(uuid, "Content-Length: abc") + b"hello" + smuggled,
        "Content-Length with a sign": head(uuid, "Content-Length: +5") + b"hello" + smuggled,
        "two different Content-Lengths": head(uuid, "Content-Length: 5", f"Content-Length: {5 + len(smuggled)}")
        + b"hello"
        + smuggled,
        "Content-Length as a list of two values": head(uuid, f"Content-Length: 5, {5 + len(smuggled)}")
        + b"hello"
        + smuggled,
        # A front end that reads the Content-Length sees one request; one that reads the chunks, two.
        "Content-Length and Transfer-Encoding: chunked": head(
            uuid, f"Content-Length: {5 + len(smuggled)}", "Transfer-Encoding: chunked"
        )
        + b"0\r\n\r\n"
        + smuggled,
        "Transfer-Encoding: chunked and Content-Length": head(
            uuid, "Transfer-Encoding: chunked", f"Content-Length: {5 + len(smuggled)}"
        )
        + b"0\r\n\r\n"
        + smuggled,
        # Chunked is not the final coding: the body length cannot be known (RFC 9112 6.3).
        "Transfer-Encoding that is not chunked": head(uuid, "Transfer-Encoding: xchunked") + b"0\r\n\r\n" + smuggled,
    }


CASES = list(cases("u", "v"))


@pytest.mark.parametrize("case", CASES)
def test_malformed_request_gets_400_then_close(live, checks, case):
    data = cases(checks["ping"], checks[VICTIM])[case]
    with connect(live.server.port) as c:
        c.send(data)
        try:
            r = c.read_response()
        except Closed as e:
            raise AssertionError(f"closed without an answer ({e.partial!r})") from None
        assert (r.status, r.reason) == (400, "Bad Request"), r
        assert c.wait_closed(3) == b""
    assert live.get_check(checks[VICTIM])["n_pings"] == 0
    assert live.get_check(checks["ping"])["n_pings"] == 0
    # The server is none the worse for it.
    with connect(live.server.port) as c:
        assert c.request(build("GET", f"/ping/{checks['ping']}")).status == 200


def test_malformed_request_after_answered_ones_on_a_kept_alive_connection(live, checks):
    # Two good pipelined pings, then a bad chunk size: the good ones are answered, then the 400.
    uuid, victim = checks["ping"], checks[VICTIM]
    with connect(live.server.port) as c:
        c.send(
            build("GET", f"/ping/{uuid}/start")
            + build("POST", f"/ping/{uuid}", b"fine")
            + head(uuid, "Transfer-Encoding: chunked")
            + b"5\r\nhello\r\nzz\r\n"
            + build("GET", f"/ping/{victim}")
        )
        assert [c.read_response().status for _ in range(3)] == [200, 200, 400]
        assert c.wait_closed(3) == b""
    assert live.get_check(uuid)["n_pings"] == 2
    assert live.get_check(victim)["n_pings"] == 0


def test_bad_framing_on_an_api_request_gets_400_then_close(live, checks):
    victim = checks[VICTIM]
    smuggled = build("GET", f"/ping/{victim}")
    api_head = b"POST /api/v3/checks/ HTTP/1.1\r\nHost: hc.test\r\nX-Api-Key: " + b"hcw_" + b"a" * 28
    for framing in (
        b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        b"\r\nContent-Length: -2\r\n\r\n{}",
    ):
        with connect(live.server.port) as c:
            c.send(api_head + framing + smuggled)
            r = c.read_response()
            assert r.status == 400, r
            assert c.wait_closed(3) == b""
    assert live.get_check(victim)["n_pings"] == 0
    assert [c["name"] for c in live.api("GET", "checks/").json()["checks"]] == ["target", VICTIM]

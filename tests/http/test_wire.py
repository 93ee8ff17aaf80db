"""What a client sees on the wire, byte for byte over raw sockets: keep-alive rules of HTTP/1.0 and
1.1, pipelined requests answered in order, pings and API calls mixed on one connection, request
bodies (Content-Length, chunked, Expect: 100-continue, bodies past the stored limit
and past the hard cap), HEAD, OPTIONS and refused methods, the idle, header and body timeouts, TLS,
IPv6 and X-Forwarded-* per pipelined request.

These pin the behaviour of the HTTP layer as clients see it, whichever code parses the bytes.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PING_KEY, LiveServer, make_settings, start_server
from tests.fakes import FakeClock
from tests.http.wire import api, build, chunked, connect

ANSWER_HEADERS = ["content-type", "access-control-allow-origin", "cache-control", "ping-body-limit", "content-length"]


def ping_log(live: LiveServer, uuid: str) -> list[dict[str, Any]]:
    """The check's pings, oldest first."""
    r = live.api("GET", f"checks/{uuid}/pings/")
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["pings"]))


def stored_body(live: LiveServer, uuid: str, n: int) -> bytes:
    r = live.api("GET", f"checks/{uuid}/pings/{n}/body")
    assert r.status_code == 200, r.text
    return r.content


def n_pings(live: LiveServer, uuid: str) -> int:
    return int(live.get_check(uuid)["n_pings"])


def assert_ok(r, body: bytes = b"OK") -> None:
    assert (r.status, r.reason, r.body) == (200, "OK", body), r
    assert r.names() == ANSWER_HEADERS or sorted(r.names()) == sorted(ANSWER_HEADERS), r.headers


@pytest.fixture
def uuid(live: LiveServer) -> str:
    return str(live.create(name="wire", slug="wire")["uuid"])


# -- keep-alive ---------------------------------------------------------------------------------


def ping_or_api(kind: str, uuid: str, version: str = "HTTP/1.1", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    if kind == "ping":
        return build("GET", f"/ping/{uuid}", headers=headers, version=version)
    return api("GET", f"checks/{uuid}", headers=headers, version=version)


def assert_answered(kind: str, r) -> None:
    assert r.status == 200, r
    if kind == "ping":
        assert r.body == b"OK"
    else:
        assert r.json()["name"] == "wire"


@pytest.mark.parametrize("kind", ["ping", "api"])
def test_http_1_1_keeps_the_connection_open_by_default(live, uuid, kind):
    with connect(live.server.port) as c:
        for _ in range(3):
            r = c.request(ping_or_api(kind, uuid))
            assert_answered(kind, r)
            assert (r.header("Connection") or "").lower() != "close"
        assert c.stays_open(0.3)
    assert n_pings(live, uuid) == (3 if kind == "ping" else 0)


@pytest.mark.parametrize("kind", ["ping", "api"])
def test_http_1_0_closes_after_the_answer(live, uuid, kind):
    with connect(live.server.port) as c:
        r = c.request(ping_or_api(kind, uuid, version="HTTP/1.0"))
        assert_answered(kind, r)
        assert c.wait_closed(3) == b""


@pytest.mark.parametrize("kind", ["ping", "api"])
def test_http_1_0_with_keep_alive_stays_open_and_says_so(live, uuid, kind):
    with connect(live.server.port) as c:
        for _ in range(2):
            r = c.request(ping_or_api(kind, uuid, version="HTTP/1.0", headers=(("Connection", "keep-alive"),)))
            assert_answered(kind, r)
            assert (r.header("Connection") or "").lower() == "keep-alive", r.headers
        assert c.stays_open(0.3)
        # Without the header the next 1.0 request ends the connection.
        assert_answered(kind, c.request(ping_or_api(kind, uuid, version="HTTP/1.0")))
        assert c.wait_closed(3) == b""


@pytest.mark.parametrize("kind", ["ping", "api"])
def test_http_1_1_connection_close_is_honoured(live, uuid, kind):
    with connect(live.server.port) as c:
        assert_answered(kind, c.request(ping_or_api(kind, uuid)))
        r = c.request(ping_or_api(kind, uuid, headers=(("Connection", "close"),)))
        assert_answered(kind, r)
        assert c.wait_closed(3) == b""
    assert n_pings(live, uuid) == (2 if kind == "ping" else 0)


# -- pipelining ---------------------------------------------------------------------------------


def test_pipelined_pings_are_answered_and_recorded_in_order(live):
    a = live.create(name="a")["uuid"]
    b = live.create(name="b", slug="bee")["uuid"]
    requests = [
        ("GET", f"/ping/{a}/start", None),
        ("POST", f"/ping/{b}/log", b"first log of b"),
        ("POST", f"/{a}/log", b"\x00\xffbinary"),
        ("PUT", f"/ping/{PING_KEY}/bee/fail", b"b failed"),
        ("POST", f"/ping/{a}/3", b"exit three"),
        ("POST", f"/{b}", b"b ok"),
        ("GET", f"/ping/{a}", None),
    ]
    with connect(live.server.port) as c:
        c.send(b"".join(build(method, path, body) for method, path, body in requests))
        for _ in requests:
            assert_ok(c.read_response())
        assert c.stays_open(0.2)
    log_a, log_b = ping_log(live, a), ping_log(live, b)
    assert [(p["type"], p["method"]) for p in log_a] == [
        ("start", "GET"), ("log", "POST"), ("fail", "POST"), ("success", "GET")
    ]  # fmt: skip
    assert [(p["type"], p["method"]) for p in log_b] == [("log", "POST"), ("fail", "PUT"), ("success", "POST")]
    assert [stored_body(live, a, n) for n in (2, 3)] == [b"\x00\xffbinary", b"exit three"]
    assert [stored_body(live, b, n) for n in (1, 2, 3)] == [b"first log of b", b"b failed", b"b ok"]


def test_pipelined_mix_of_pings_api_calls_404_and_head(live, uuid):
    unknown = "00000000-0000-4000-8000-000000000000"
    with connect(live.server.port) as c:
        c.send(
            build("POST", f"/ping/{uuid}", b"one")
            + api("GET", f"checks/{uuid}")
            + build("GET", f"/ping/{uuid}/start")
            + build("GET", f"/ping/{unknown}")
            + build("HEAD", f"/ping/{uuid}")
            + api("GET", f"checks/{uuid}/pings/")
            + build("OPTIONS", f"/ping/{uuid}")
            + api("GET", "status/", key="")
        )
        assert_ok(c.read_response())
        r = c.read_response()
        # Each request sees what the ones before it did.
        assert r.status == 200 and r.json()["n_pings"] == 1 and r.json()["started"] is False
        assert_ok(c.read_response())
        r = c.read_response()
        assert (r.status, r.body) == (404, b"not found")
        r = c.read_response(head=True)
        assert (r.status, r.header("Content-Length"), r.body) == (200, "2", b"")
        r = c.read_response()
        assert r.status == 200 and [p["type"] for p in r.json()["pings"]] == ["success", "start", "success"]
        r = c.read_response()
        assert r.status == 204 and r.body == b""
        r = c.read_response()
        assert (r.status, r.body) == (200, b"OK")
        assert c.stays_open(0.2)


def test_pipelined_requests_split_across_writes_at_awkward_places(live, uuid):
    # The same pipeline, cut in the middle of a request line, of a header and of a body.
    data = build("POST", f"/ping/{uuid}/log", b"0123456789") + build("GET", f"/ping/{uuid}") + api("GET", "checks/")
    with connect(live.server.port) as c:
        for cut in (3, 20, len(data) // 2 - 5, len(data) // 2 + 7, len(data) - 4):
            c.send(data[:cut])
            data = data[cut:]
            time.sleep(0.02)
        c.send(data)
        assert_ok(c.read_response())
        assert_ok(c.read_response())
        assert c.read_response().json()["checks"][0]["n_pings"] == 2
    assert stored_body(live, uuid, 1) == b"0123456789"


def test_a_body_that_looks_like_a_request_is_a_body(live, uuid):
    # The bytes a Content-Length frames as the body are never read as a request of their own.
    other = live.create(name="other")["uuid"]
    inner = build("GET", f"/ping/{other}")
    with connect(live.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", inner) + build("GET", f"/ping/{uuid}/log"))
        assert_ok(c.read_response())
        assert_ok(c.read_response())
        assert c.stays_open(0.2)
    assert n_pings(live, other) == 0
    assert stored_body(live, uuid, 1) == inner


# -- a client session: pings and API calls on one keep-alive connection -------------------------


def test_a_keep_alive_session_mixing_api_calls_and_pings(live):
    with connect(live.server.port) as c:
        r = c.request(api("POST", "checks/", {"name": "Nightly", "timeout": 3600, "grace": 60}))
        assert r.status == 201
        check = r.json()
        uuid = check["uuid"]
        assert_ok(c.request(build("GET", f"/ping/{uuid}/start")))
        r = c.request(api("GET", f"checks/{uuid}"))
        assert r.status == 200 and r.json()["started"] is True
        assert_ok(c.request(build("POST", f"/ping/{uuid}", b"done")))
        r = c.request(api("POST", f"checks/{uuid}", {"desc": "updated"}))
        assert r.status == 200 and r.json()["desc"] == "updated"
        assert_ok(c.request(build("GET", f"/ping/{PING_KEY}/nightly/fail")))
        r = c.request(api("POST", f"checks/{uuid}/pause", {}))
        assert r.status == 200 and r.json()["status"] == "paused"
        r = c.request(api("GET", f"checks/{uuid}/pings/"))
        assert [p["type"] for p in r.json()["pings"]] == ["fail", "success", "start"]
        r = c.request(api("GET", f"checks/{uuid}/pings/2/body"))
        assert (r.status, r.body) == (200, b"done")
        r = c.request(api("DELETE", f"checks/{uuid}"))
        assert r.status == 200
        r = c.request(build("GET", f"/ping/{uuid}"))
        assert (r.status, r.body) == (404, b"not found")
        assert c.stays_open(0.2)


# -- bodies ---------------------------------------------------------------------------------------


def test_a_chunked_body_is_stored(live, uuid):
    # Chunks that hold CRLFs and what looks like a last-chunk are data all the same.
    pieces = [b"line one\n", b"\x00\x01\x02", b"x" * 5000, b"\r\n0\r\n\r\n", b"end"]
    with connect(live.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}/log", headers=(("Transfer-Encoding", "chunked"),)))
        c.send(chunked(*pieces[:2])[:-5])  # the rest, and the last-chunk, in a second write
        time.sleep(0.05)
        assert_ok(c.request(chunked(*pieces[2:])))
        # An empty chunked body and a Content-Length body on the same connection.
        assert_ok(
            c.request(build("POST", f"/ping/{uuid}/log", headers=(("Transfer-Encoding", "chunked"),)) + chunked())
        )
        assert_ok(c.request(build("POST", f"/ping/{uuid}", b"plain")))
    assert stored_body(live, uuid, 1) == b"".join(pieces)
    assert ping_log(live, uuid)[1]["body_url"] is None
    assert stored_body(live, uuid, 3) == b"plain"


def test_expect_100_continue_on_a_ping(live, uuid):
    body = b"sent after the go-ahead"
    head = build("POST", f"/ping/{uuid}", headers=(("Expect", "100-continue"), ("Content-Length", str(len(body)))))
    with connect(live.server.port) as c:
        c.send(head)
        interim = c.read_response()
        assert interim.status == 100 and interim.version == "HTTP/1.1"
        c.send(body)
        assert_ok(c.read_response())
        # And again on the same connection, chunked this time.
        c.send(
            build("POST", f"/ping/{uuid}/log", headers=(("Expect", "100-continue"), ("Transfer-Encoding", "chunked")))
        )
        assert c.read_response().status == 100
        c.send(chunked(b"second"))
        assert_ok(c.read_response())
    assert [stored_body(live, uuid, n) for n in (1, 2)] == [body, b"second"]


def test_expect_100_continue_on_an_api_post(live):
    body = b'{"name": "continued"}'
    head = api("POST", "checks/", headers=(("Expect", "100-continue"), ("Content-Length", str(len(body)))))
    with connect(live.server.port) as c:
        c.send(head)
        assert c.read_response().status == 100
        c.send(body)
        r = c.read_response()
        assert r.status == 201 and r.json()["name"] == "continued"


def test_a_body_past_the_stored_limit_is_cut_and_the_ping_counts(clock):
    live, stop = start_server(make_settings(ping_body_limit=1000), clock)
    try:
        uuid = live.create(name="big")["uuid"]
        big = bytes(range(256)) * (3 * 1024 * 1024 // 256)
        with connect(live.server.port) as c:
            r = c.request(build("POST", f"/ping/{uuid}/log", big))
            assert_ok(r)
            assert r.header("Ping-Body-Limit") == "1000"
            # The same, chunked in odd sizes, then a ping behind it on the same connection.
            pieces = [big[i : i + 70_001] for i in range(0, len(big), 70_001)]
            c.send(build("POST", f"/ping/{uuid}/log", headers=(("Transfer-Encoding", "chunked"),)) + chunked(*pieces))
            assert_ok(c.read_response())
            assert_ok(c.request(build("GET", f"/ping/{uuid}")))
        assert n_pings(live, uuid) == 3
        assert stored_body(live, uuid, 1) == stored_body(live, uuid, 2) == big[:1000]
    finally:
        stop()


@pytest.fixture
def capped(clock: FakeClock) -> Iterator[LiveServer]:
    live, stop = start_server(make_settings(max_request_body=100_000), clock)
    yield live
    stop()


def test_413_for_a_declared_length_comes_before_the_body_then_close(capped):
    uuid = capped.create(name="capped")["uuid"]
    with connect(capped.server.port) as c:
        # Only the head is sent: the answer must not wait for 100 MB that will never come.
        c.send(build("POST", f"/ping/{uuid}", headers=(("Content-Length", "100000001"),)) + b"partial")
        r = c.read_response()
        assert (r.status, r.body) == (413, b"request body too large")
        assert (r.header("Connection") or "").lower() == "close"
        assert c.wait_closed(3) == b""
    assert n_pings(capped, uuid) == 0


def test_413_instead_of_100_continue_for_a_declared_length_over_the_cap(capped):
    uuid = capped.create(name="capped")["uuid"]
    with connect(capped.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", headers=(("Expect", "100-continue"), ("Content-Length", "100001"))))
        r = c.read_response()
        assert (r.status, r.body) == (413, b"request body too large")
        assert c.wait_closed(3) == b""
    assert n_pings(capped, uuid) == 0


def test_413_for_a_chunked_body_growing_past_the_cap_then_close(capped):
    uuid = capped.create(name="capped")["uuid"]
    with connect(capped.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", headers=(("Transfer-Encoding", "chunked"),)))
        for _ in range(3):
            c.send(b"8000\r\n" + b"z" * 0x8000 + b"\r\n")  # 96 KiB: under the cap
        assert c.stays_open(0.2)
        c.send(b"8000\r\n" + b"z" * 0x8000 + b"\r\n")  # 128 KiB: over it; the body is not finished
        r = c.read_response()
        assert (r.status, r.body) == (413, b"request body too large")
        assert c.wait_closed(3) == b""
    assert n_pings(capped, uuid) == 0


def test_a_body_of_exactly_the_cap_is_taken_and_the_connection_kept(capped):
    uuid = capped.create(name="capped")["uuid"]
    with connect(capped.server.port) as c:
        assert_ok(c.request(build("POST", f"/ping/{uuid}", b"q" * 100_000)))
        assert_ok(
            c.request(
                build("POST", f"/ping/{uuid}", headers=(("Transfer-Encoding", "chunked"),)) + chunked(b"q" * 100_000)
            )
        )
        assert_ok(c.request(build("GET", f"/ping/{uuid}")))
    assert n_pings(capped, uuid) == 3


def test_requests_pipelined_behind_a_413_are_not_served(capped):
    uuid = capped.create(name="capped")["uuid"]
    with connect(capped.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", b"y" * 100_001) + build("GET", f"/ping/{uuid}/fail"))
        assert c.read_response().status == 413
        assert c.wait_closed(3) == b""
    assert n_pings(capped, uuid) == 0


@pytest.mark.parametrize(("target", "status"), [("/ping/" + "a" * 9000, 414), ("/ping/x", 431)])
def test_414_and_431_on_a_kept_alive_connection_then_close(live, uuid, target, status):
    big = (("X-Big", "b" * 70_000),) if status == 431 else ()
    with connect(live.server.port) as c:
        assert_ok(c.request(build("GET", f"/ping/{uuid}")))
        r = c.request(build("GET", target, headers=big))
        assert r.status == status and (r.header("Connection") or "").lower() == "close"
        assert c.wait_closed(3) == b""
    assert [p["type"] for p in ping_log(live, uuid)] == ["success"]


# -- HEAD, OPTIONS, refused methods ------------------------------------------------------------


def test_head_has_the_headers_of_get_and_no_body(live, uuid):
    unknown = "00000000-0000-4000-8000-000000000000"
    with connect(live.server.port) as c:
        for path in (f"/ping/{uuid}", f"/ping/{unknown}", f"/ping/{PING_KEY}/Upper"):
            get = c.request(build("GET", path))
            head = c.request(build("HEAD", path), head=True)
            assert head.body == b"" and get.body != b""
            assert (head.status, head.reason, head.headers) == (get.status, get.reason, get.headers)
        # Nothing of a body was sent after the HEAD answer: the next answer parses cleanly.
        assert_ok(c.request(build("GET", f"/ping/{uuid}")))
    assert [p["method"] for p in ping_log(live, uuid)] == ["GET", "HEAD", "GET"]


def test_options_preflight_answers_204_with_cors_headers(live, uuid):
    with connect(live.server.port) as c:
        r = c.request(
            build(
                "OPTIONS",
                f"/ping/{uuid}",
                headers=(("Origin", "https://example.org"), ("Access-Control-Request-Method", "POST")),
            )
        )
        assert (r.status, r.body) == (204, b"")
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert r.header("Access-Control-Allow-Methods") == "HEAD, GET, POST, PUT, OPTIONS"
        assert r.header("Access-Control-Allow-Headers") == "*"
        assert r.header("Access-Control-Max-Age") == "600"
        assert r.header("Content-Length") in (None, "0")
        assert_ok(c.request(build("GET", f"/ping/{uuid}")))
    assert n_pings(live, uuid) == 1


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_other_methods_on_a_ping_path_get_405_and_the_connection_stays(live, uuid, method):
    with connect(live.server.port) as c:
        r = c.request(build(method, f"/ping/{uuid}", b"ignored body"))
        assert (r.status, r.body) == (405, b"method not allowed")
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert_ok(c.request(build("GET", f"/ping/{uuid}")))
    assert n_pings(live, uuid) == 1


# -- timeouts -------------------------------------------------------------------------------------


@pytest.fixture
def impatient(clock: FakeClock) -> Iterator[LiveServer]:
    live, stop = start_server(make_settings(idle_timeout=0.4, body_timeout=0.4), clock)
    yield live
    stop()


# With a 0.4 s idle timeout a pooled keep-alive connection may be closed just as it is reused: the
# impatient server is asked over a new connection each time.


def create_over_new_connection(live: LiveServer, name: str) -> str:
    with connect(live.server.port) as c:
        r = c.request(api("POST", "checks/", {"name": name}))
        assert r.status == 201, r
        return str(r.json()["uuid"])


def n_pings_over_new_connection(live: LiveServer, uuid: str) -> int:
    with connect(live.server.port) as c:
        return int(c.request(api("GET", f"checks/{uuid}")).json()["n_pings"])


@pytest.mark.parametrize("kind", ["ping", "api"])
def test_an_idle_keep_alive_connection_is_closed_after_an_answered_request(impatient, kind):
    uuid = create_over_new_connection(impatient, "wire")
    with connect(impatient.server.port) as c:
        assert_answered(kind, c.request(ping_or_api(kind, uuid)))
        answered = time.monotonic()
        assert c.wait_closed(4) == b""
        assert 0.2 < time.monotonic() - answered < 3


def test_a_chunked_upload_that_stalls_is_cut_and_records_nothing(impatient):
    uuid = create_over_new_connection(impatient, "slow")
    with connect(impatient.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", headers=(("Transfer-Encoding", "chunked"),)) + b"5\r\nhello\r\n")
        started = time.monotonic()
        rest = c.wait_closed(4)
        assert time.monotonic() - started < 3
        assert not rest.startswith(b"HTTP/1.1 2"), rest
    assert n_pings_over_new_connection(impatient, uuid) == 0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_upload_that_trickles_past_the_body_timeout_is_cut(impatient, framing):
    # The body timeout bounds the whole body, not the gap between two pieces of it.
    uuid = create_over_new_connection(impatient, "slow")
    header = ("Transfer-Encoding", "chunked") if framing == "chunked" else ("Content-Length", "1000")
    piece = b"1\r\nx\r\n" if framing == "chunked" else b"x"
    with connect(impatient.server.port) as c:
        c.send(build("POST", f"/ping/{uuid}", headers=(header,)))
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 3:
            try:
                c.send(piece)
            except OSError:
                cut = True
                break
            if c.readable_within(0.05):
                cut = True
                break
        assert cut, "the server kept taking a trickle for 3 s"
        rest = c.wait_closed(3)
        assert not rest.startswith(b"HTTP/1.1 2"), rest
        assert 0.3 < time.monotonic() - started < 3
    assert n_pings_over_new_connection(impatient, uuid) == 0


@pytest.mark.parametrize("partial", [b"GET /pi", b"GET /ping/x HTTP/1.1\r\nHost: x\r\nUser-Ag"])
def test_a_request_head_that_stalls_is_closed(impatient, partial):
    with connect(impatient.server.port) as c:
        c.send(partial)
        started = time.monotonic()
        rest = c.wait_closed(4)
        assert time.monotonic() - started < 3
        # Closed silently, or with a 4xx; never a 2xx or a 5xx.
        assert rest == b"" or rest.startswith(b"HTTP/1.1 4"), rest


# -- TLS, IPv6, X-Forwarded-* --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def test_tls_keep_alive_ping_and_api_call_record_https(clock, certificate):
    cert, key = certificate
    live, stop = start_server(make_settings(certfile=str(cert), keyfile=str(key)), clock)
    try:
        tls = ssl.create_default_context(cafile=str(cert))
        with connect(live.server.port, tls=tls) as c:
            r = c.request(api("POST", "checks/", {"name": "secure"}))
            assert r.status == 201
            uuid = r.json()["uuid"]
            assert_ok(c.request(build("POST", f"/ping/{uuid}", b"over tls")))
            c.send(build("GET", f"/ping/{uuid}/log") + api("GET", f"checks/{uuid}/pings/"))
            assert_ok(c.read_response())
            pings = c.read_response().json()["pings"]
            assert [(p["type"], p["scheme"]) for p in pings] == [("log", "https"), ("success", "https")]
            assert c.stays_open(0.2)
        # Plain HTTP to the TLS port gets no answer a client could take for one, and records nothing.
        with connect(live.server.port) as plain:
            plain.send(build("GET", f"/ping/{uuid}"))
            assert not plain.wait_closed(4).startswith(b"HTTP/1.1 200")
        with connect(live.server.port, tls=tls) as c:
            assert c.request(api("GET", f"checks/{uuid}")).json()["n_pings"] == 2
    finally:
        stop()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_loopback_pipelined_pings(clock):
    live, stop = start_server(make_settings(host="::1"), clock)
    try:
        uuid = live.create(name="six")["uuid"]
        with connect(live.server.port, host="::1") as c:
            c.send(build("GET", f"/ping/{uuid}/start", host="[::1]") + build("POST", f"/{uuid}", b"v6", host="[::1]"))
            assert_ok(c.read_response())
            assert_ok(c.read_response())
        assert [(p["type"], p["remote_addr"]) for p in ping_log(live, uuid)] == [("start", "::1"), ("success", "::1")]
    finally:
        stop()


def test_forwarded_headers_apply_to_their_own_pipelined_request_only(live, uuid):
    with connect(live.server.port) as c:
        c.send(
            build("GET", f"/ping/{uuid}", headers=(("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")))
            + build("GET", f"/ping/{uuid}")
            + build("GET", f"/ping/{uuid}", headers=(("X-Forwarded-For", "198.51.100.1, 2001:db8::7"),))
            + build(
                "GET",
                f"/ping/{uuid}",
                headers=(
                    ("X-Forwarded-For", "198.51.100.2"),
                    ("X-Forwarded-For", "192.0.2.5"),
                    ("X-Forwarded-Proto", "http, https"),
                ),
            )
        )
        for _ in range(4):
            assert_ok(c.read_response())
    recorded = [(p["remote_addr"], p["scheme"]) for p in ping_log(live, uuid)]
    assert recorded == [
        ("203.0.113.9", "https"),
        ("127.0.0.1", "http"),
        ("2001:db8::7", "http"),
        ("192.0.2.5", "https"),
    ]

"""Corners of the HTTP layer: upgrade requests (`curl --http2` on http:// sends one), a missing Host,
a request head past every limit, a client that half-closes. Raw sockets to the real server."""

from __future__ import annotations

import socket

import pytest

from tests.http.wire import Closed, api, build, chunked, connect


def n_pings(live, uuid: str) -> int:
    return int(live.get_check(uuid)["n_pings"])


def test_an_upgrade_request_is_answered_in_http_1_1_and_the_next_request_is_read(live):
    uuid = live.create(name="h2c")["uuid"]
    upgrade = build(
        "GET",
        f"/ping/{uuid}",
        headers=[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")],
    )
    with connect(live.server.port) as c:
        c.send(upgrade + build("GET", f"/ping/{uuid}/start"))
        first, second = c.read_response(), c.read_response()
        assert (first.status, second.status) == (200, 200)
        assert first.header("Upgrade") is None
    assert n_pings(live, uuid) == 2


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_the_body_of_an_upgrade_request_is_its_body_not_a_request(live, framing):
    uuid = live.create(name="h2c body")["uuid"]
    hidden = build("GET", f"/ping/{uuid}/fail")
    upgrade = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")]
    if framing == "chunked":
        request = build("POST", f"/ping/{uuid}", headers=[*upgrade, ("Transfer-Encoding", "chunked")])
        request += chunked(hidden[:10], hidden[10:])
    else:
        request = build("POST", f"/ping/{uuid}", hidden, headers=upgrade)
    with connect(live.server.port) as c:
        c.send(request + build("GET", f"/ping/{uuid}/log"))
        assert (c.read_response().status, c.read_response().status) == (200, 200)
    pings = live.api("GET", f"checks/{uuid}/pings/").json()["pings"]
    assert [p["type"] for p in pings] == ["log", "success"]
    assert live.api("GET", f"checks/{uuid}/pings/1/body").content == hidden


def test_an_api_request_without_host_in_http_1_1_gets_400(live):
    with connect(live.server.port) as c:
        c.send(b"GET /api/v3/status/ HTTP/1.1\r\n\r\n")
        answer = c.read_response()
        assert answer.status == 400
        assert c.wait_closed() == b""
    with connect(live.server.port) as c:  # HTTP/1.0 needs no Host
        assert c.request(b"GET /api/v3/status/ HTTP/1.0\r\n\r\n").status == 200


def test_a_head_past_a_mebibyte_without_an_end_is_dropped(live):
    uuid = live.create(name="after")["uuid"]
    with connect(live.server.port) as c:
        # One header value that never ends: llhttp holds it whole until its line ends.
        c.send(b"GET /ping/x HTTP/1.1\r\nX-Long: ")
        try:
            for _ in range(40):
                c.send(b"a" * 65536)
        except OSError:
            pass  # reset by the server, as expected
        try:
            c.read_response()
            raise AssertionError("answered")
        except (Closed, OSError):
            pass
    assert live.ping(f"/ping/{uuid}").status_code == 200


def test_a_client_that_half_closes_after_its_requests_gets_every_answer(live):
    uuid = live.create(name="eof")["uuid"]
    with connect(live.server.port) as c:
        c.send(build("GET", f"/ping/{uuid}") + api("GET", f"checks/{uuid}"))
        c.sock.shutdown(socket.SHUT_WR)
        ping, check = c.read_response(), c.read_response()
        assert ping.status == 200 and check.json()["n_pings"] == 1
        assert c.wait_closed() == b""

"""The absolute form of the request target (`GET http://host/path HTTP/1.1`), which a server must accept.

Raw sockets: HTTP clients only send this form to proxies.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import API_KEY, PING_KEY


def exchange(port: int, request: str) -> tuple[bytes, bytes]:
    """Send one request (the connection closes after it); the answer's head and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("prefix", ["http://hc.test", "HTTP://hc.test:8000", "https://127.0.0.1", "http://[::1]:80"])
def test_a_ping_with_an_absolute_target(live, prefix):
    uuid = live.create(name="absolute")["uuid"]
    head, body = exchange(
        live.server.port, f"GET {prefix}/ping/{uuid}/fail HTTP/1.1\r\nHost: hc.test\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"OK"
    # Only http and https URLs name this server's resources.
    head, _ = exchange(
        live.server.port, f"GET ftp://hc.test/ping/{uuid} HTTP/1.1\r\nHost: hc.test\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 404 ")
    check = live.get_check(uuid)
    assert (check["n_pings"], check["status"]) == (1, "down")


def test_a_slug_ping_with_a_query_and_an_absolute_target(live):
    target = f"http://hc.test/ping/{PING_KEY}/made-here?create=1"
    head, body = exchange(
        live.server.port, f"POST {target} HTTP/1.1\r\nHost: hc.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 201 ") and body == b"Created"
    assert [c["slug"] for c in live.api("GET", "checks/").json()["checks"]] == ["made-here"]


def test_an_api_request_with_an_absolute_target(live):
    uuid = live.create(name="seen through the API")["uuid"]
    head, body = exchange(
        live.server.port,
        f"GET http://hc.test/api/v3/checks/{uuid} HTTP/1.1\r\nHost: hc.test\r\nX-Api-Key: {API_KEY}\r\nConnection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["name"] == "seen through the API"


def test_the_root_and_the_status_with_an_absolute_target(live):
    head, body = exchange(live.server.port, "GET http://hc.test HTTP/1.1\r\nHost: hc.test\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body.startswith(b"hcserver")
    head, body = exchange(
        live.server.port, "GET http://hc.test/api/v3/status/ HTTP/1.1\r\nHost: hc.test\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"OK"

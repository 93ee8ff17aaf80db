"""Bad input at the HTTP level: long targets, big headers, idle and slow connections."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import make_settings, start_server


def exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def test_long_target_414(live):
    answer = exchange(live.server.port, b"GET /ping/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414 ") and answer.endswith(b"uri too long")


def test_big_headers_431(live):
    answer = exchange(live.server.port, b"GET /ping/x HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ") and answer.endswith(b"request headers too large")


def test_big_headers_on_the_api_431(live):
    answer = exchange(live.server.port, b"GET /api/v3/status/ HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_server_survives_and_keeps_counting(live):
    uuid = live.create(name="after")["uuid"]
    exchange(live.server.port, b"GET /" + b"a" * 2_000_000 + b" HTTP/1.1\r\n\r\n")
    assert live.ping(f"/ping/{uuid}").status_code == 200
    assert live.get_check(uuid)["n_pings"] == 1


@pytest.fixture
def impatient(clock):
    server, stop = start_server(make_settings(idle_timeout=0.3, body_timeout=0.3), clock)
    yield server
    stop()


def test_idle_connection_is_closed(impatient):
    with socket.create_connection(("127.0.0.1", impatient.server.port), timeout=5) as s:
        started = time.monotonic()
        assert s.recv(1) == b""  # closed by the server, not by our 5 s timeout
        assert time.monotonic() - started < 4


def test_slow_body_is_cut_off_and_records_nothing(impatient):
    uuid = impatient.create(name="slow")["uuid"]
    with socket.create_connection(("127.0.0.1", impatient.server.port), timeout=5) as s:
        s.sendall(f"POST /ping/{uuid} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789".encode())
        started = time.monotonic()
        while s.recv(65536):
            pass
        assert time.monotonic() - started < 4
    assert impatient.get_check(uuid)["n_pings"] == 0

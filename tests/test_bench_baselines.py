"""The baseline servers answer as a ping answer does, byte for byte, and speak enough HTTP/1.1:
keep-alive, pipelining in order, HEAD without a body, bodies dropped, Connection: close."""

from __future__ import annotations

import os
import socket
import time

import pytest

from bench.api import create_checks
from bench.baseline_process import ANSWER_GET, ANSWER_HEAD, answer
from bench.server import BASELINES, Keys, ServerProcess, children, cpu_s

PIPELINED = (
    b"GET /ping/a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /ping/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    b"HEAD /ping/c HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /ping/d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    b"GET /ping/e HTTP/1.1\r\nHost: x\r\n\r\n"
)


def _exchange(server: ServerProcess, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` at once and read until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def test_the_answer_is_a_ping_answer():
    assert ANSWER_GET == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nAccess-Control-Allow-Origin: *\r\n"
        b"Cache-Control: no-cache\r\nPing-Body-Limit: 10000\r\nContent-Length: 2\r\n\r\nOK"
    )
    assert ANSWER_GET[:-2] == ANSWER_HEAD


def test_cpu_and_children_of_this_process():
    assert (cpu_s(os.getpid()) or 0.0) > 0.0
    assert cpu_s(2**22 + 1) is None  # above the default pid_max: no such process
    assert children(2**22 + 1) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", BASELINES)
def test_baseline_answers_like_a_ping(tmp_path, kind):
    with ServerProcess.baseline(kind, tmp_path) as server:
        expected = ANSWER_GET + ANSWER_GET + ANSWER_HEAD + answer(close=True)
        assert _exchange(server, PIPELINED) == expected
        assert _exchange(server, b"HEAD /ping/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == answer(
            head=True, close=True
        )


@pytest.mark.slow
def test_hcserver_answers_a_ping_with_the_baselines_bytes(tmp_path):
    # The baselines are only a fair floor and ceiling while they send what a ping answer sends.
    keys = Keys.generate()
    with ServerProcess.hcserver(tmp_path / "hc.sqlite3", keys) as server:
        [check] = create_checks(server, keys, 1, tmp_path)
        got = _exchange(server, f"GET /ping/{check.uuid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert got == answer(close=True)
        assert server.children_cpu_s(), "the write-behind writer process is a child of the server"

"""HC_MAX_API_BODY (1 MiB): a bigger Management API body gets 413 and a JSON error, then the connection closes.

Raw sockets, so a chunked body can stop right past the limit and the answer can be read whole.
"""

from __future__ import annotations

import json
import socket

from tests.conftest import API_KEY

LIMIT = 1024 * 1024
HEAD = f"POST /api/v3/checks/ HTTP/1.1\r\nHost: hc.test\r\nX-Api-Key: {API_KEY}\r\nContent-Type: application/json\r\n"


def answer_to(port: int, data: bytes) -> tuple[bytes, bytes]:
    """Send `data`, read until the server closes; (head, body). A connection the server keeps open fails."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def chunked(*pieces: bytes, last: bool = True) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return out + (b"0\r\n\r\n" if last else b"")


def test_a_chunked_body_over_the_limit_gets_413_in_json_then_the_connection_closes(live):
    # A body of exactly the limit is read.
    payload = json.dumps({"name": "padded"}).encode()
    padded = payload + b" " * (LIMIT - len(payload))
    head, body = answer_to(
        live.server.port,
        (HEAD + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        + chunked(*[padded[i : i + 50_000] for i in range(0, LIMIT, 50_000)]),
    )
    assert head.startswith(b"HTTP/1.1 201 ") and json.loads(body)["name"] == "padded"

    # 16 chunks of 64 KiB make exactly the limit; one byte more is refused as it arrives.
    pieces = [b" " * 65536] * 16 + [b" "]
    head, body = answer_to(
        live.server.port, (HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked(*pieces, last=False)
    )
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nContent-Type: application/json" in head and b"\r\nConnection: close" in head
    assert json.loads(body) == {"error": "request body too large"}
    assert [c["name"] for c in live.api("GET", "checks/").json()["checks"]] == ["padded"]


def test_the_same_answer_as_for_a_content_length_over_the_limit(live):
    over_length = answer_to(live.server.port, (HEAD + f"Content-Length: {LIMIT + 1}\r\n\r\n").encode())
    one_big_chunk = (
        (HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n" % (2 * LIMIT) + b" " * (LIMIT + 1)
    )
    over_chunked = answer_to(live.server.port, one_big_chunk)
    assert (
        over_chunked[0].split(b"\r\n")[0]
        == over_length[0].split(b"\r\n")[0]
        == b"HTTP/1.1 413 Request Entity Too Large"
    )
    assert over_chunked[1] == over_length[1] == b'{"error": "request body too large"}'

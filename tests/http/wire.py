"""A raw HTTP/1.1 client over one socket, for the wire-level tests.

It sends exactly the bytes it is given and parses what comes back by the rules of RFC 9112: the
status line, the header lines, then a body framed by Content-Length, by chunked transfer coding, or
by the end of the connection; no body for a HEAD request, a 1xx, 204 or 304 answer. So a test sees
what any client would see, pipelined answers and interim 100 answers included, and can tell "closed
without an answer" (`Closed`) from an answer followed by a close (`wait_closed`).

Every socket has a timeout; every wait is bounded.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.conftest import API_KEY

TIMEOUT = 5.0


class Closed(Exception):
    """The server closed the connection (or reset it) before a whole answer came; `partial` holds
    the bytes of the unfinished answer, if any."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__(f"connection closed; partial answer {partial[:200]!r}")
        self.partial = partial


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)

    def names(self) -> list[str]:
        """The header names, lowercased, in order."""
        return [key.lower() for key, _ in self.headers]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Conn:
    """One client connection; `send` and `read_response` as many times as the test needs."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", timeout: float = TIMEOUT, tls: ssl.SSLContext | None = None
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        try:
            raw.connect((host, port))
            self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        except BaseException:
            raw.close()
            raise
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, data: bytes, head: bool = False) -> Response:
        """Send one request and read its final answer (skipping any 1xx)."""
        self.send(data)
        response = self.read_response(head=head)
        while 100 <= response.status < 200:
            response = self.read_response(head=head)
        return response

    # -- reading ----------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more into the buffer; False at the end of the connection (a reset counts as one)."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self, start: bytes) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20 or not self._fill():
                raise Closed(start + self.buf)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exactly(self, n: int, start: bytes) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise Closed(start + self.buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head: bool = False) -> Response:
        """The next answer on the connection, an interim 1xx one included; `head`: it answers a
        HEAD request, so it has no body whatever its headers say. Raises Closed if the connection
        ends first."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20 or not self._fill():
                raise Closed(self.buf)
        raw_head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        response = Response(version, int(code), reason, headers, b"")
        if head or response.status < 200 or response.status in (204, 304):
            return response
        if (response.header("Transfer-Encoding") or "").lower() == "chunked":
            response.chunked = True
            response.body = self._chunked_body(raw_head)
        elif response.header("Content-Length") is not None:
            response.body = self._exactly(int(response.header("Content-Length") or 0), raw_head)
        else:
            while self._fill():
                pass
            response.body, self.buf = self.buf, b""
        return response

    def _chunked_body(self, start: bytes) -> bytes:
        body = b""
        while True:
            size = int(self._line(start).split(b";")[0], 16)
            if size == 0:
                while self._line(start):  # trailer lines, up to the empty one
                    pass
                return body
            body += self._exactly(size, start)
            if self._exactly(2, start) != b"\r\n":
                raise AssertionError("bad chunk framing in the answer")

    def answer_or_none(self, head: bool = False) -> Response | None:
        """The next answer, or None if the connection ends with no byte of one."""
        try:
            return self.read_response(head=head)
        except Closed as e:
            if e.partial:
                raise
            return None

    def wait_closed(self, within: float = TIMEOUT) -> bytes:
        """Wait until the server closes the connection; return what came before the close (expected
        empty). AssertionError if it is still open after `within` seconds."""
        deadline = time.monotonic() + within
        self.sock.settimeout(0.05)
        try:
            while not self.eof:
                assert time.monotonic() < deadline, f"still open after {within} s"
                try:
                    self._fill()
                except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
                    continue
        finally:
            self.sock.settimeout(self.timeout)
        rest, self.buf = self.buf, b""
        return rest

    def stays_open(self, for_s: float = 0.3) -> bool:
        """True if the server neither closes the connection nor sends anything for `for_s` seconds."""
        if self.buf or self.eof:
            return False
        self.sock.settimeout(for_s)
        try:
            self._fill()
        except (TimeoutError, ssl.SSLWantReadError):
            return True
        finally:
            self.sock.settimeout(self.timeout)
        return False

    def readable_within(self, seconds: float) -> bool:
        """True if bytes (or the close) arrive within `seconds`; nothing is consumed."""
        if self.buf or self.eof:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        return bool(select.select([self.sock], [], [], seconds)[0])


@contextmanager
def connect(port: int, host: str = "127.0.0.1", **options: Any) -> Iterator[Conn]:
    conn = Conn(port, host, **options)
    try:
        yield conn
    finally:
        conn.close()


# -- requests as bytes ----------------------------------------------------------------------------


def build(
    method: str,
    target: str,
    body: bytes | None = None,
    headers: Iterable[tuple[str, str]] = (),
    version: str = "HTTP/1.1",
    host: str = "hc.test",
) -> bytes:
    """One request as bytes: Host first, then `headers`, then Content-Length if `body` is given
    (and `headers` name no Content-Length or Transfer-Encoding)."""
    lines = [f"{method} {target} {version}", f"Host: {host}"]
    given = [(name, value) for name, value in headers]
    lines += [f"{name}: {value}" for name, value in given]
    framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in given)
    if body is not None and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def api(
    method: str,
    path: str,
    payload: Any = None,
    key: str = API_KEY,
    headers: Iterable[tuple[str, str]] = (),
    version: str = "HTTP/1.1",
) -> bytes:
    """A Management API request (`path` under /api/v3/), with the key and, if given, a JSON body."""
    extra = [("X-Api-Key", key), *headers]
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        extra.append(("Content-Type", "application/json"))
    return build(method, "/api/v3/" + path.lstrip("/"), body, extra, version)


def chunked(*pieces: bytes, extension: str = "") -> bytes:
    """`pieces` in chunked transfer coding, each chunk size followed by `extension` (";name=value")."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension.encode(), p) for p in pieces if p)
    return out + b"0\r\n\r\n"


def unanswered_then_stalls(sock: socket.socket, limit_bytes: int, within: float) -> int:
    """Push bytes into a non-blocking socket until the peer stops taking them: the send buffer stays
    full for a second. Returns the bytes the kernel took; AssertionError if `limit_bytes` went in
    (the peer keeps reading) or `within` seconds passed without a stall."""
    block = b"x" * 65536
    sent = 0
    deadline = time.monotonic() + within
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while sent < limit_bytes and time.monotonic() < deadline:
            try:
                sent += sock.send(block)
            except BlockingIOError:
                if not select.select([], [sock], [], 1.0)[1]:
                    return sent  # a whole second without room: the peer is not reading
        raise AssertionError(f"the server kept reading: {sent} bytes taken in {within} s")
    finally:
        sock.settimeout(timeout)

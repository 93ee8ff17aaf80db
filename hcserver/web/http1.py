"""HTTP/1.0 and 1.1 on the server's port: requests parsed by httptools, pings answered inline.

Why not Tornado's HTTPServer: its HTTP1Connection (coroutines, IOStream reads, an HTTPHeaders per
request) costs several times what a ping itself does. Here each connection is an `asyncio.Protocol`
on the event loop Tornado runs on, fed by Tornado's accept loop; httptools (llhttp) parses, and:

- ping targets are answered from the index through `Pinger`, with answers prepared once as bytes;
- every path of the route table (web/routes.py: /api/, /badge/, /) goes to the tornado.web
  Application, through `AppExchange`, which implements Tornado's HTTPConnection for that request,
  so one keep-alive connection may mix pings and API calls.

A connection handles one request at a time, in the order they came. While a request waits (a
durable ping for its commit, a ping for room in the backlog, an API handler), the connection stops
reading, and what was already parsed behind it (pipelined requests) waits in `held` and is handled
in turn: answers go out in order and pings are recorded in order, and nothing buffers without bound.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from http.client import responses
from typing import Any

import httptools
from tornado import httputil
from tornado.httputil import HTTPHeaders, RequestStartLine, ResponseStartLine
from tornado.netutil import add_accept_handler
from tornado.web import Application

from hcserver.context import Context
from hcserver.web.ping import Pinger, origin_form
from hcserver.web.routes import AppPaths
from hcserver.web.tornado_internals import PeerContext

log = logging.getLogger("hcserver.http")
# One line per ping answer at DEBUG: method, target (a slug URL's ping key masked), code, microseconds.
access_log = logging.getLogger("hcserver.access")

# Our limits, answered 414 and 431 as soon as a request passes them.
MAX_TARGET = 8 * 1024
MAX_HEADERS = 64 * 1024
# A request head still unfinished after this many bytes is dropped without an answer: llhttp keeps
# a header's name and value whole until they end, and this bounds what that may hold.
MAX_HEAD = 1024 * 1024
# After an answer that ends a connection before its request was read to the end (413, 414, 431,
# 400), the rest the client sends is read and dropped for up to this long before the socket closes:
# closing with unread data makes the kernel send a reset, which can destroy the answer on its way.
LINGER_S = 2.0
CONTINUE = b"HTTP/1.1 100 (Continue)\r\n\r\n"

# The header names a ping reads (llhttp keeps names as sent; they are compared in lowercase).
_UA, _LENGTH, _XFF, _XFP, _EXPECT = 1, 2, 3, 4, 5
_PING_HEADERS = {
    b"user-agent": _UA,
    b"content-length": _LENGTH,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"expect": _EXPECT,
}
# How an answer ends the exchange: keep the connection, close it (said in a header), or keep it
# for an HTTP/1.0 client that asked to (said too).
KEEP, CLOSE, KEEP_10 = 0, 1, 2


class Answers:
    """Ping answers as bytes, each (code, text, HEAD or not, how it ends) built once."""

    def __init__(self, ping_body_limit: int) -> None:
        self.limit = ping_body_limit
        self._cache: dict[tuple[int, str, bool, int], bytes] = {}

    def get(self, code: int, text: str, head: bool, ending: int) -> bytes:
        key = (code, text, head, ending)
        answer = self._cache.get(key)
        if answer is None:
            answer = self._cache[key] = self._build(code, text, head, ending)
        return answer

    def _build(self, code: int, text: str, head: bool, ending: int) -> bytes:
        body = text.encode()
        lines = [
            f"HTTP/1.1 {code} {responses.get(code, 'Unknown')}",
            "Content-Type: text/plain; charset=utf-8",
            "Access-Control-Allow-Origin: *",
            "Cache-Control: no-cache",
        ]
        if self.limit:
            lines.append(f"Ping-Body-Limit: {self.limit}")
        if code == 204:
            lines += [
                "Access-Control-Allow-Methods: HEAD, GET, POST, PUT, OPTIONS",
                "Access-Control-Allow-Headers: *",
                "Access-Control-Max-Age: 600",
            ]
            body = b""
        else:
            lines.append(f"Content-Length: {len(body)}")
        if ending == CLOSE:
            lines.append("Connection: close")
        elif ending == KEEP_10:
            lines.append("Connection: Keep-Alive")
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + (b"" if head else body)


_API_BODY_TOO_LARGE = (
    b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nContent-Length: 35\r\n"
    b"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
    b'{"error": "request body too large"}'
)


class Request:
    """One request on a connection, from its head to its answer."""

    __slots__ = (
        "app",
        "body_follows",
        "body_parts",
        "delegate",
        "ended",
        "exchange",
        "expect",
        "forwarded_for",
        "forwarded_proto",
        "head",
        "headers",
        "keep_alive",
        "kept",
        "length",
        "method",
        "received",
        "refusal",
        "started",
        "target",
        "ua",
        "version",
    )
    # Set only while the access log is on (DEBUG), so a ping pays nothing for it otherwise.
    started: float

    def __init__(self, method: str, target: str, version: str, keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.keep_alive = keep_alive
        self.head = method == "HEAD"
        self.app = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.ua = ""
        self.length = ""
        self.forwarded_for = ""
        self.forwarded_proto = ""
        self.expect = False
        self.body_parts: list[bytes] = []
        self.kept = 0
        self.received = 0
        self.ended = False  # its body has been read to the end
        self.body_follows = False  # an upgrade request whose body llhttp left unread
        self.refusal: tuple[int, str] | None = None  # answered before its body
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.exchange: AppExchange | None = None

    @property
    def ending(self) -> int:
        if self.version == "1.1":
            return KEEP if self.keep_alive else CLOSE
        return KEEP_10 if self.keep_alive else KEEP


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, handle each request in turn, answer in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.context = PeerContext(None, "http")
        # The request being parsed, and the head of the next (target, headers, their size).
        self.reading: Request | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # the bytes of its header lines, held to MAX_HEADERS
        self.head_bytes = 0  # the bytes read while in the head, held to MAX_HEAD
        self.in_head = False
        # Handling: `active` is the request being answered, `busy` while it waits; `held` keeps, in
        # order, what was parsed behind it. Once `done_reading`, what arrives is dropped: the last request was
        # parsed (Connection: close, an end of input, a refusal), or the connection is `lingering`.
        self.active: Request | None = None
        self.busy = False
        self.held: deque[tuple[Callable[[Request, bytes], None], Request, bytes]] | None = None
        self.done_reading = False
        self.lingering = False
        self.paused = False
        self.write_paused = False
        self.drained: list[asyncio.Future[None]] = []
        self.deadline = 0.0  # when the sweeper closes it (0: never); see HttpServer.sweep
        self.released = False

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        protocol = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        self.context = PeerContext(transport.get_extra_info("peername"), protocol)
        self.server.connections.add(self)
        self.deadline = time.monotonic() + self.server.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.done_reading = True
        self.server.connections.discard(self)
        self.server.release(self)
        for request in self._unanswered():
            if request.delegate is not None and not request.ended:
                request.delegate.on_connection_close()
            if request.exchange is not None:
                request.exchange.connection_closed()
        self.held = None
        waiters, self.drained = self.drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        # The client sends nothing more: answer what it sent, then close.
        self.done_reading = True
        if not self.busy and not self.held:
            self._close()
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self.drained = self.drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self.busy and not self.held:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.done_reading:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data, upgrade.args[0])
        except httptools.HttpParserCallbackError:
            if not self.done_reading:  # a callback failed for a reason of its own
                log.exception("parsing a request failed")
                self._refuse_head(400, "bad request")
        except httptools.HttpParserError:
            self._refuse_head(400, "bad request")
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                self.abort()

    def _upgraded(self, data: bytes, offset: int) -> None:
        """After the head of a request with `Upgrade` (`curl --http2` sends `Upgrade: h2c`): no
        protocol is switched, the request is answered in HTTP/1.1, and what follows is HTTP/1.1.

        llhttp stops at the end of such a request's head and would take its body for the next
        request; so when it has one, a new parser reads on, first fed a made-up head with the
        request's own framing headers (Content-Length or Transfer-Encoding), which `_BodyAfterUpgrade`
        swallows: the body then reaches the request as any other does."""
        request = self.reading
        if request is not None and request.body_follows:
            request.body_follows = False
            framing = b"".join(
                name + b": " + value + b"\r\n"
                for name, value in request.headers
                if name.lower() in (b"content-length", b"transfer-encoding")
            )
            self.parser = httptools.HttpRequestParser(_BodyAfterUpgrade(self))
            self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n")
        if offset < len(data):
            self.data_received(data[offset:])

    # -- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.head_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            self._refuse_head(414, "uri too long")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        size = self.head_size + len(name) + len(value) + 4
        self.head_size = size
        if size > MAX_HEADERS:
            self._refuse_head(431, "request headers too large")
            raise _Stop

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        target = self.url.decode("latin-1")
        if target[:1] != "/":
            target = origin_form(target)
        request = Request(parser.get_method().decode(), target, parser.get_http_version(), parser.should_keep_alive())
        request.headers = self.headers
        if self.server.access_log:
            request.started = time.perf_counter()
        self.reading = request
        for name, value in self.headers:
            which = _PING_HEADERS.get(name.lower())
            if which is None:
                continue
            text = value.decode("latin-1")
            if which == _UA:
                request.ua = text
            elif which == _LENGTH:
                request.length = text
            elif which == _XFF:  # repeated lines form one list
                request.forwarded_for = f"{request.forwarded_for}, {text}" if request.forwarded_for else text
            elif which == _XFP:
                request.forwarded_proto = text  # the last line: the nearest proxy's
            else:
                request.expect = text.lower() == "100-continue"
        if parser.should_upgrade():
            request.body_follows = _has_body(request)
        request.app = app = self.server.app_paths.owns(target)
        if not app and request.length.isdigit() and int(request.length) > self.server.max_request_body:
            request.refusal = (413, "request body too large")
        self._event(self._start, request, b"")

    def on_body(self, body: bytes) -> None:
        if self.done_reading:
            raise _Stop
        request = self.reading
        assert request is not None
        self._event(self._body, request, body)

    def on_message_complete(self) -> None:
        request = self.reading
        assert request is not None
        if request.body_follows:
            return  # the head of an upgrade request with a body: see _upgraded
        self.reading = None
        if not request.keep_alive:
            self.done_reading = True  # parse nothing after it
        self._event(self._end, request, b"")
        if self.done_reading:
            raise _Stop

    # -- handling, in order -----------------------------------------------------------------------

    def _event(self, step: Callable[[Request, bytes], None], request: Request, data: bytes) -> None:
        if self.busy or self.held:
            if self.held is None:
                self.held = deque()
            self.held.append((step, request, data))
            return
        step(request, data)

    def _drain(self) -> None:
        while self.held and not self.busy:
            step, request, data = self.held.popleft()
            step(request, data)
        if self.busy:
            return
        self.held = None
        if self.lingering:
            return
        if self.done_reading:
            self._close()
        elif not self.write_paused:
            self._resume_reading()

    def _wait(self) -> None:
        """The request at the head waits for something: read nothing more until it is answered."""
        self.busy = True
        self.deadline = 0.0
        self._pause_reading()

    def _done_waiting(self) -> None:
        self.busy = False
        self._drain()

    def _start(self, request: Request, _: bytes) -> None:
        self.active = request
        if request.refusal is not None:
            code, text = request.refusal
            self._answer(request, code, text)
        elif request.app:
            self._start_app(request)
        else:
            self._await_body(request)

    def _await_body(self, request: Request) -> None:
        """Before a body is read: `100 Continue` if the client waits for it, and the body's deadline."""
        if not request.ended:
            if request.expect and request.version == "1.1":
                self._write(CONTINUE)
            self.deadline = time.monotonic() + self.server.body_timeout

    def _body(self, request: Request, chunk: bytes) -> None:
        if request.refusal is not None:
            return
        request.received += len(chunk)
        if request.app:
            self._app_body(request, chunk)
            return
        room = self.server.ping_body_limit - request.kept
        if room > 0:
            piece = chunk if len(chunk) <= room else chunk[:room]
            request.body_parts.append(piece)
            request.kept += len(piece)
        if request.received > self.server.max_request_body:
            request.refusal = (413, "request body too large")
            self._answer(request, 413, "request body too large")

    def _end(self, request: Request, _: bytes) -> None:
        request.ended = True
        if request.refusal is not None:
            return
        if request.app:
            self._end_app(request)
            return
        parts = request.body_parts
        peer = self.context
        code, text, waiter = self.server.pinger.answer(
            request.method,
            request.target,
            peer.remote_ip,
            peer.protocol,
            request.ua,
            request.forwarded_for,
            request.forwarded_proto,
            (parts[0] if len(parts) == 1 else b"".join(parts)) if parts else None,
        )
        if waiter is None:
            self._answer(request, code, text)
            return
        self._wait()

        def recorded(f: asyncio.Future[None]) -> None:
            if f.cancelled() or f.exception() is not None:
                log.error("recording a ping failed: %r", None if f.cancelled() else f.exception())
                self._answer(request, 503, "could not record the ping")
            else:
                self._answer(request, code, text)
            self._done_waiting()

        asyncio.ensure_future(waiter).add_done_callback(recorded)

    def _answer(self, request: Request, code: int, text: str) -> None:
        """Write a ping answer (or a refusal); then keep the connection, or close it."""
        ending = request.ending
        if request.refusal is not None or (self.server.stopping and request.version == "1.1"):
            ending = CLOSE
        server = self.server
        self._write(server.answers.get(code, text, request.head, ending))
        server.answered[code] += 1
        if server.access_log:
            _log_access(request, code)
        self._answered(request, ending == CLOSE)

    def _answered(self, request: Request, close: bool) -> None:
        """An answer is written: close (after reading what is left of its request, if anything),
        or wait for the next request."""
        self.active = None
        if close or not request.keep_alive or self.server.stopping:
            self.done_reading = True
            self.held = None  # what was pipelined after it goes unanswered, as the client was told
            if request.ended:
                self._close()
            else:
                self._linger()
        else:
            self.deadline = time.monotonic() + self.server.idle_timeout

    # -- requests for the Application -------------------------------------------------------------

    def _start_app(self, request: Request) -> None:
        if request.length.isdigit() and int(request.length) > self.server.max_api_body:
            self._api_body_too_large(request)
            return
        headers = HTTPHeaders()
        for name, value in request.headers:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        start_line = RequestStartLine(request.method, request.target, "HTTP/" + request.version)
        exchange = AppExchange(self, request)
        try:
            server_request = httputil.HTTPServerRequest(
                connection=exchange, server_connection=self, start_line=start_line, headers=headers
            )
        except httputil.HTTPInputError as e:  # an HTTP/1.1 request without Host
            log.info("bad request from %s: %s", self.context.remote_ip, e)
            request.refusal = (400, "bad request")
            self._answer(request, 400, "bad request")
            return
        request.exchange = exchange
        delegate = request.delegate = self.server.app.find_handler(server_request)
        self._await_body(request)
        self._follow(delegate.headers_received(start_line, headers))

    def _app_body(self, request: Request, chunk: bytes) -> None:
        if request.received > self.server.max_api_body:
            # Counted here as it arrives, so a chunked body is held to the limit too.
            self._api_body_too_large(request)
            return
        assert request.delegate is not None
        self._follow(request.delegate.data_received(chunk))

    def _end_app(self, request: Request) -> None:
        assert request.delegate is not None and request.exchange is not None
        if request.exchange.finished:
            return  # answered before its body ended
        self._wait()
        request.delegate.finish()

    def _follow(self, pending: Awaitable[None] | None) -> None:
        """A delegate that returned an awaitable takes nothing more until it is done."""
        if pending is None:
            return
        self._wait()
        asyncio.ensure_future(pending).add_done_callback(lambda _: self._done_waiting())

    def _api_body_too_large(self, request: Request) -> None:
        request.refusal = (413, "request body too large")
        request.delegate = None
        self._write(_API_BODY_TOO_LARGE)
        self._answered(request, close=True)

    def app_write(self, data: bytes) -> asyncio.Future[None]:
        """Write part of an Application's answer; the future is done when there is room for more."""
        self._write(data)
        waiter = asyncio.get_running_loop().create_future()
        if self.write_paused and self.transport is not None and not self.transport.is_closing():
            self.drained.append(waiter)
        else:
            waiter.set_result(None)
        return waiter

    def app_finished(self, request: Request, close: bool) -> None:
        """The Application's answer is written."""
        self._answered(request, close or not request.ended)
        if request.ended and self.busy:
            self._done_waiting()

    # -- the connection ---------------------------------------------------------------------------

    def _unanswered(self) -> list[Request]:
        requests = [request for _, request, _ in self.held or ()]
        if self.active is not None:
            requests.insert(0, self.active)
        if self.reading is not None:
            requests.append(self.reading)
        return list(dict.fromkeys(requests))

    def _refuse_head(self, code: int, text: str) -> None:
        """A request that cannot be parsed or is past a limit: answer it in its turn, then close."""
        self.in_head = False
        if self.done_reading:
            return
        self.done_reading = True
        request = Request("GET", "/", "1.1", False)
        request.refusal = (code, text)
        self._event(self._start, request, b"")

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _pause_reading(self) -> None:
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()

    def _linger(self) -> None:
        """Read and drop what the client still sends, then close (see LINGER_S)."""
        transport = self.transport
        self.lingering = True
        if transport is None or not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        self.deadline = time.monotonic() + LINGER_S
        self._resume_reading()

    def _close(self) -> None:
        self.deadline = 0.0
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.done_reading = True
        if self.transport is not None:
            self.transport.abort()

    def timed_out(self) -> None:
        """Idle past HC_IDLE_TIMEOUT, a body slower than HC_BODY_TIMEOUT, or done lingering."""
        self.done_reading = True
        self._close()

    def shut(self) -> None:
        """The server stops: close now if no request is in flight, else once it is answered."""
        if not (self.busy or self.held or self.reading is not None) or self.lingering:
            self._close()


def _log_access(request: Request, code: int) -> None:
    started = getattr(request, "started", None)
    took = f"{(time.perf_counter() - started) * 1e6:.0f}" if started is not None else "-"
    access_log.debug("%s %s %d %s us", request.method, mask_ping_key(request.target), code, took)


def mask_ping_key(target: str) -> str:
    """A request target with the ping key of a slug URL replaced by `***`, for the logs.

    >>> mask_ping_key("/ping/abcdefghijklmnopqrstuv/backup/start?create=1")
    '/ping/***/backup/start?create=1'
    >>> mask_ping_key("/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail")
    '/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail'
    """
    path, mark, query = target.partition("?")
    start = 6 if path.startswith("/ping/") else 1
    end = path.find("/", start)
    if end == -1 or end - start == 36:  # one segment, or a check's uuid
        return target
    return path[:start] + "***" + path[end:] + mark + query


def _has_body(request: Request) -> bool:
    return request.length not in ("", "0") or any(name.lower() == b"transfer-encoding" for name, _ in request.headers)


class _BodyAfterUpgrade:
    """The callbacks of a parser that reads on after an upgrade request's head (see
    `HttpConnection._upgraded`): its first head, made up, is dropped; the rest goes to the connection."""

    def __init__(self, conn: HttpConnection) -> None:
        self.conn = conn
        self.skipping = True

    def on_message_begin(self) -> None:
        if not self.skipping:
            self.conn.on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self.skipping:
            self.conn.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.skipping:
            self.conn.on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.skipping:
            self.skipping = False
        else:
            self.conn.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)

    def on_message_complete(self) -> None:
        self.conn.on_message_complete()


class _Stop(Exception):
    """Raised in a parser callback to stop parsing this connection's input."""


class AppExchange(httputil.HTTPConnection):
    """Tornado's HTTPConnection for one request handed to the Application: how its answer is written
    (as Tornado's HTTP1Connection writes it: chunked when HTTP/1.1 has no Content-Length, the
    Connection header for HTTP/1.0 keep-alive)."""

    def __init__(self, conn: HttpConnection, request: Request) -> None:
        self.conn = conn
        self.request = request
        self.context = conn.context
        self.chunked = False
        self.close_after = False
        self.finished = False
        self.close_callback: Callable[[], None] | None = None

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self.close_callback = callback

    def connection_closed(self) -> None:
        callback, self.close_callback = self.close_callback, None
        if callback is not None and not self.finished:
            callback()

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        assert isinstance(start_line, ResponseStartLine)
        request = self.request
        code = start_line.code
        has_body = not request.head and code not in (204, 304) and not 100 <= code < 200
        framed = "Content-Length" in headers
        if request.version == "1.1":
            self.chunked = has_body and not framed
            if not request.keep_alive or self.conn.server.stopping:
                headers["Connection"] = "close"
                self.close_after = True
        else:
            if request.keep_alive and (framed or not has_body):
                headers["Connection"] = "Keep-Alive"
            else:
                self.close_after = True  # without a length, the end of the body is the close
        if self.chunked:
            headers["Transfer-Encoding"] = "chunked"
        lines = [f"HTTP/1.1 {code} {start_line.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"Illegal characters (CR or LF) in header: {line!r}")
        data = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
        if chunk:
            data += self._frame(chunk)
        return self.conn.app_write(data)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self.conn.app_write(self._frame(chunk))

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.close_callback = None
        if self.chunked:
            self.conn.app_write(b"0\r\n\r\n")
        self.conn.app_finished(self.request, self.close_after)

    def _frame(self, chunk: bytes) -> bytes:
        if self.chunked and chunk:
            return b"%x\r\n%b\r\n" % (len(chunk), chunk)
        return chunk


class HttpServer:
    """The listening sockets' accept loops, the open connections, their timeouts, and a clean stop."""

    def __init__(
        self,
        ctx: Context,
        app: Application,
        app_paths: AppPaths,
        *,
        ssl_context: ssl.SSLContext | None,
        accepted: Callable[[], None],
        released: Callable[[], None],
    ) -> None:
        self.settings = settings = ctx.settings
        self.app = app
        self.app_paths = app_paths
        self.pinger = Pinger(ctx)
        self.answers = Answers(settings.ping_body_limit)
        # Answers on the ping path by status code, for /metrics: a plain count per answer.
        self.answered: Counter[int] = Counter()
        # Asked once: with DEBUG off, a ping costs one attribute test for the access log.
        self.access_log = access_log.isEnabledFor(logging.DEBUG)
        self.ping_body_limit = settings.ping_body_limit
        self.max_request_body = settings.max_request_body
        self.max_api_body = settings.max_api_body
        self.idle_timeout = settings.idle_timeout
        self.body_timeout = settings.body_timeout
        self.ssl_context = ssl_context
        self._accepted = accepted
        self._released = released
        self.connections: set[HttpConnection] = set()
        self.stopping = False
        self._removers: list[Callable[[], None]] = []
        self._sweeper: asyncio.TimerHandle | None = None
        # The sweeper looks at every connection this often: a tenth of the shortest timeout.
        self.sweep_every = min(1.0, max(0.02, min(self.idle_timeout, self.body_timeout, LINGER_S) / 10))

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._removers.append(add_accept_handler(sock, self._accept))
        self._sweeper = asyncio.get_running_loop().call_later(self.sweep_every, self.sweep)

    def _accept(self, sock: socket.socket, address: Any) -> None:
        self._accepted()
        protocol = HttpConnection(self)
        loop = asyncio.get_running_loop()
        if self.ssl_context is None:
            sock.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(lambda: protocol, sock))
        else:
            task = loop.create_task(
                loop.connect_accepted_socket(
                    lambda: protocol, sock, ssl=self.ssl_context, ssl_handshake_timeout=self.body_timeout
                )
            )

        def connected(t: asyncio.Task[Any]) -> None:
            if t.cancelled() or t.exception() is not None:
                # A TLS handshake that failed or timed out: the protocol never saw the connection.
                exc = None if t.cancelled() else t.exception()
                log.debug("connection from %s failed before its first request: %r", address, exc)
                self.release(protocol)
                sock.close()

        task.add_done_callback(connected)

    def release(self, conn: HttpConnection) -> None:
        """Count a connection as closed, once."""
        if not conn.released:
            conn.released = True
            self._released()

    def sweep(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.connections if c.deadline and c.deadline < now]:
            conn.timed_out()
        if not self.stopping or self.connections:
            self._sweeper = asyncio.get_running_loop().call_later(self.sweep_every, self.sweep)

    def stop_accepting(self) -> None:
        for remove in self._removers:
            remove()
        self._removers = []

    async def stop(self, timeout: float) -> None:
        """Stop accepting; close idle connections; answer what is in flight, then close; after
        `timeout`, close what is left."""
        self.stop_accepting()
        self.stopping = True
        for conn in list(self.connections):
            conn.shut()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.connections:
            log.warning("some connections were still open after %.0f s; closing them", timeout)
            for conn in list(self.connections):
                conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()

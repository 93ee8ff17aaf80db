"""The Pinging API: the hot path.

Why not a RequestHandler: a ping does one dict lookup and a few attribute writes, so the
per-request machinery of tornado.web (HTTPServerRequest, handler instance, argument parsing,
header normalisation, Date/Server/Etag logic) would be most of its cost. `Dispatcher` receives
every request; the paths of the route table (web/routes.py: /api/, /badge/, /) are handed to the
tornado.web Application, and the rest get a `PingDelegate` that talks to the HTTP connection directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Awaitable, Iterable
from http.client import responses
from urllib.parse import parse_qs, unquote

from tornado import httputil
from tornado.httputil import HTTPHeaders, ResponseStartLine
from tornado.web import Application

from hcserver.context import Context
from hcserver.domain.errors import DomainError, Invalid, NotFound
from hcserver.domain.pings import FAIL, LOG, START, SUCCESS, PingRequest
from hcserver.services import PingRoute, record_ping
from hcserver.web.routes import AppPaths
from hcserver.web.tornado_internals import copy_headers, copy_headers_works, peer

log = logging.getLogger("hcserver.ping")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# The scheme and authority of an absolute-form request target (RFC 9112 3.2.2: http://host/path).
_ABSOLUTE = re.compile(r"(?i:https?)://[^/?#]*")
# Django's <slug:> converter: the route matches these, then uppercase is refused with a 400.
_SLUG = re.compile(r"[-a-zA-Z0-9_]+\Z")
_ACTIONS = {"": SUCCESS, "start": START, "fail": FAIL, "log": LOG}
PING_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})
# Our limits, answered 414 / 431. Tornado's own (TORNADO_MAX_HEADER_SIZE) is higher: past it tornado
# drops the connection without a word, so it only stops what no client would send.
MAX_TARGET = 8 * 1024
MAX_HEADERS = 64 * 1024
TORNADO_MAX_HEADER_SIZE = 1024 * 1024


def parse_ping_path(path: str) -> PingRoute | None:
    """Map a URL path to a ping route; None when no route matches (answered 404).

    Raises Invalid for a slug with uppercase letters (the reference's 400, before any lookup).

    >>> parse_ping_path("/ping/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/start").action
    'start'
    """
    if "%" in path:
        path = unquote(path, errors="replace")
    rest = path[6:] if path.startswith("/ping/") else path[1:]
    if rest.endswith("/"):
        rest = rest[:-1]
    parts = rest.split("/")
    count = len(parts)
    if count > 3 or not all(parts):
        return None
    first = parts[0]
    if _UUID.match(first):
        if count == 3:
            return None
        action, exitstatus = _action(parts[1] if count == 2 else "")
        if action is None:
            return None
        return PingRoute(action, uuid=first, exitstatus=exitstatus)
    if count == 1:
        return None
    slug = parts[1]
    action, exitstatus = _action(parts[2] if count == 3 else "")
    if action is None or not _SLUG.match(slug):
        return None
    if slug != slug.lower():
        raise Invalid("invalid url format")
    return PingRoute(action, ping_key=first, slug=slug, exitstatus=exitstatus)


def _action(suffix: str) -> tuple[str | None, int | None]:
    action = _ACTIONS.get(suffix)
    if action is not None:
        return action, None
    if suffix.isascii() and suffix.isdigit():
        # Anything over three digits is over 255; don't parse arbitrarily long numbers.
        status = int(suffix) if len(suffix) <= 3 else 256
        return (SUCCESS if status == 0 else FAIL), status
    return None, None


def parse_query(query: str) -> tuple[str | None, bool]:
    """(rid, create) from a query string; the rid as sent (`record_ping` checks it, in its turn)."""
    if not query:
        return None, False
    args = parse_qs(query, keep_blank_values=True, errors="replace")
    rids = args.get("rid")
    rid = rids[-1] if rids is not None else None
    creates = args.get("create")
    return rid, creates is not None and creates[-1] == "1"


def origin_form(target: str) -> str:
    """The path and query of an absolute-form request target; any other target as it is.

    >>> origin_form("http://hc.example.org/ping/x?rid=1"), origin_form("HTTPS://hc.example.org")
    ('/ping/x?rid=1', '/')
    """
    found = _ABSOLUTE.match(target)
    if found is None:
        return target
    rest = target[found.end() :]
    return rest if rest.startswith("/") else "/" + rest


class TrustedProxies:
    """The peers whose X-Forwarded-For and X-Forwarded-Proto are believed (HC_TRUSTED_PROXIES).

    X-Forwarded-For is read from the right, as each proxy appends the address it saw: the client is
    the first address that is not one of our proxies (a client can write anything to the left).

    >>> proxies = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8"])
    >>> proxies.trusts("127.0.0.1"), proxies.trusts("::ffff:10.1.2.3"), proxies.trusts("203.0.113.9")
    (True, True, False)
    >>> proxies.client("6.6.6.6, 203.0.113.9, 10.0.0.1", "127.0.0.1")
    '203.0.113.9'
    >>> proxies.client("203.0.113.9, garbage", "127.0.0.1")
    '127.0.0.1'
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        # Peer verdicts, so a proxy's address is parsed once, not per request; bounded.
        self._peers: dict[str, bool] = {}

    def trusts(self, peer: str) -> bool:
        verdict = self._peers.get(peer)
        if verdict is None:
            verdict = self._contains(_ip(peer))
            if len(self._peers) >= 1024:
                self._peers.clear()
            self._peers[peer] = verdict
        return verdict

    def client(self, forwarded: str, peer: str) -> str:
        address = peer
        for item in reversed(forwarded.split(",")):
            ip = _ip(item)
            if ip is None:
                break
            address = str(ip)
            if not self._contains(ip):
                break
        return address

    def _contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        if ip is None:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d, from a "::" listener
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it: 1.2.3.4, 1.2.3.4:5678, 2001:db8::1 or [2001:db8::1]:443."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_scheme(forwarded: str, real: str) -> str:
    """The last X-Forwarded-Proto item (the nearest proxy's) if it is http or https, else `real`."""
    last = forwarded.rpartition(",")[2].strip().lower()
    return last if last in ("http", "https") else real


class Answers:
    """Ping answers, their headers built once per (code, text) and copied per request.

    Building an HTTPHeaders normalises and validates each name and value; with the five headers a
    ping answer carries that was a visible share of a ping's cost (see `copy_headers`).
    """

    def __init__(self, ping_body_limit: int) -> None:
        self.limit = ping_body_limit
        self._cache: dict[tuple[int, str], tuple[HTTPHeaders, bytes]] = {}
        self._fast = copy_headers_works()

    def get(self, code: int, text: str) -> tuple[HTTPHeaders, bytes]:
        prepared = self._cache.get((code, text))
        if prepared is None:
            prepared = self._cache[(code, text)] = self._build(code, text)
        template, body = prepared
        return (copy_headers(template) if self._fast else HTTPHeaders(template)), body

    def _build(self, code: int, text: str) -> tuple[HTTPHeaders, bytes]:
        body = text.encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "text/plain; charset=utf-8"
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Cache-Control"] = "no-cache"
        if self.limit:
            headers["Ping-Body-Limit"] = str(self.limit)
        if code == 204:
            headers["Access-Control-Allow-Methods"] = "HEAD, GET, POST, PUT, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "*"
            headers["Access-Control-Max-Age"] = "600"
            return headers, b""
        headers["Content-Length"] = str(len(body))
        if code in (413, 414, 431):
            # Refused before or while reading: close rather than read a body we will not use.
            headers["Connection"] = "close"
        return headers, body


class Dispatcher(httputil.HTTPServerConnectionDelegate):
    """The HTTP server's delegate: a PingDelegate per request (which hands non-ping paths on)."""

    def __init__(self, ctx: Context, app: Application, app_paths: AppPaths) -> None:
        self.ctx = ctx
        self.app = app
        self.app_paths = app_paths
        self.answers = Answers(ctx.settings.ping_body_limit)
        self.proxies = TrustedProxies(ctx.settings.trusted_proxies)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return PingDelegate(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        pass


class PingDelegate(httputil.HTTPMessageDelegate):
    __slots__ = (
        "app_delegate",
        "conn",
        "dispatcher",
        "done",
        "forwarded_for",
        "forwarded_proto",
        "kept",
        "method",
        "parts",
        "path",
        "received",
        "server_conn",
        "ua",
    )

    def __init__(self, dispatcher: Dispatcher, server_conn: object, conn: httputil.HTTPConnection) -> None:
        self.dispatcher = dispatcher
        self.server_conn = server_conn
        self.conn = conn
        self.app_delegate: httputil.HTTPMessageDelegate | None = None
        self.parts: list[bytes] = []
        self.kept = 0
        self.received = 0
        self.done = False
        self.method = "GET"
        self.path = "/"
        self.ua = ""
        self.forwarded_for = ""
        self.forwarded_proto = ""

    # -- HTTPMessageDelegate ----------------------------------------------------------------------

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        path = start_line.path
        self.method = start_line.method
        if len(path) > MAX_TARGET:
            self.reply(414, "uri too long")
            return None
        if path[:1] != "/":
            path = origin_form(path)
            start_line = httputil.RequestStartLine(start_line.method, path, start_line.version)
        self.path = path
        # One pass over the headers: their size, and the few a ping reads. (HTTPHeaders.get of a
        # missing name raises and catches a KeyError inside: four of those cost more than this loop.)
        size = 0
        length = ""
        for name, value in headers.get_all():
            size += len(name) + len(value) + 4
            if name == "User-Agent":
                self.ua = value
            elif name == "Content-Length":
                length = value
            elif name == "X-Forwarded-For":  # repeated lines form one list
                self.forwarded_for = f"{self.forwarded_for}, {value}" if self.forwarded_for else value
            elif name == "X-Forwarded-Proto":
                self.forwarded_proto = value  # the last line: the nearest proxy's
        if size > MAX_HEADERS:
            self.reply(431, "request headers too large")
            return None
        app_paths = self.dispatcher.app_paths
        if path in app_paths.exact or path.startswith(app_paths.prefixes):
            return self._hand_to_app(start_line, headers, length)
        if length.isdigit() and int(length) > self.dispatcher.ctx.settings.max_request_body:
            self.reply(413, "request body too large")
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.app_delegate is not None:
            # Counted here, not by tornado (whose cap answers a chunked body a bare 400).
            self.received += len(chunk)
            if self.received > self.dispatcher.ctx.settings.max_api_body:
                self.app_delegate = None
                self._api_body_too_large()
                return None
            return self.app_delegate.data_received(chunk)
        if self.done:
            return None
        settings = self.dispatcher.ctx.settings
        self.received += len(chunk)
        room = settings.ping_body_limit - self.kept
        if room > 0:
            piece = chunk if len(chunk) <= room else chunk[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        if self.received > settings.max_request_body:
            self.reply(413, "request body too large")
        return None

    def finish(self) -> None:
        if self.app_delegate is not None:
            self.app_delegate.finish()
            return
        if self.done:
            return
        try:
            self.handle()
        except DomainError as e:
            self.reply(e.status, e.message)
        except Exception:
            log.exception("ping %s %s failed", self.method, self.path[:200])
            self.reply(500, "internal error")

    def on_connection_close(self) -> None:
        if self.app_delegate is not None:
            self.app_delegate.on_connection_close()

    # -- the ping ---------------------------------------------------------------------------------

    def handle(self) -> None:
        method = self.method
        if method == "OPTIONS":
            self.reply(204, "")
            return
        if method not in PING_METHODS:
            self.reply(405, "method not allowed")
            return
        path, _, query = self.path.partition("?")
        route = parse_ping_path(path)
        if route is None:
            raise NotFound()
        rid, route.create = parse_query(query)
        ua = self.ua
        remote_addr, scheme = peer(self.conn)
        if self.forwarded_for or self.forwarded_proto:
            proxies = self.dispatcher.proxies
            if proxies.trusts(remote_addr):
                remote_addr = proxies.client(self.forwarded_for, remote_addr)
                scheme = forwarded_scheme(self.forwarded_proto, scheme)
        request = PingRequest(
            action=route.action,
            method=method,
            scheme=scheme,
            remote_addr=remote_addr,
            ua=ua[:200] if len(ua) > 200 else ua,
            body=b"".join(self.parts) if self.parts else None,
            rid=rid,
            exitstatus=route.exitstatus,
        )
        created, waiter = record_ping(self.dispatcher.ctx, route, request)
        code, text = (201, "Created") if created else (200, "OK")
        if waiter is None:
            self.reply(code, text)
        else:
            self.done = True  # nothing more to read for this request; answer when recorded
            _answer_after(waiter, self, code, text)

    def reply(self, code: int, text: str) -> None:
        self.done = True
        headers, body = self.dispatcher.answers.get(code, text)
        self.conn.write_headers(
            ResponseStartLine("HTTP/1.1", code, responses.get(code, "Unknown")),
            headers,
            None if self.method == "HEAD" or not body else body,
        )
        self.conn.finish()

    def _hand_to_app(
        self, start_line: httputil.RequestStartLine, headers: HTTPHeaders, length: str
    ) -> Awaitable[None] | None:
        if length.isdigit() and int(length) > self.dispatcher.ctx.settings.max_api_body:
            self._api_body_too_large()
            return None
        # A chunked body is counted as it arrives (data_received); tornado's own cap stays lifted.
        request = httputil.HTTPServerRequest(
            connection=self.conn, server_connection=self.server_conn, start_line=start_line, headers=headers
        )
        self.app_delegate = self.dispatcher.app.find_handler(request)
        return self.app_delegate.headers_received(start_line, headers)

    def _api_body_too_large(self) -> None:
        """413 for a Management API body over HC_MAX_API_BODY, then close: the rest goes unread."""
        self.done = True
        body = b'{"error": "request body too large"}'
        self.conn.write_headers(
            ResponseStartLine("HTTP/1.1", 413, "Request Entity Too Large"),
            HTTPHeaders({"Content-Type": "application/json", "Content-Length": str(len(body)),
                         "Access-Control-Allow-Origin": "*", "Connection": "close"}),
            body,
        )  # fmt: skip
        self.conn.finish()


def _answer_after(waiter: Awaitable[None], delegate: PingDelegate, code: int, text: str) -> None:
    future = asyncio.ensure_future(waiter)

    def done(f: asyncio.Future[None]) -> None:
        if f.cancelled() or f.exception() is not None:
            log.error("recording a ping failed: %r", None if f.cancelled() else f.exception())
            delegate.reply(503, "could not record the ping")
        else:
            delegate.reply(code, text)

    future.add_done_callback(done)

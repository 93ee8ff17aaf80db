"""The Pinging API: what a ping request means, apart from HTTP.

`Pinger.answer` takes what the HTTP layer (web/http1.py) parsed out of a request (method, target,
the few headers a ping reads, the peer, the body) and returns the answer's status and text, and
what to wait for before answering in durable mode. It parses the URL, believes forwarded headers
only from trusted proxies, and calls the `record_ping` use case; the HTTP layer only parses and
answers.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Iterable
from urllib.parse import parse_qs, unquote

from hcserver.context import Context
from hcserver.domain.errors import DomainError, Invalid, NotFound
from hcserver.domain.pings import FAIL, LOG, START, SUCCESS, PingRequest
from hcserver.services import PingRoute, record_ping

log = logging.getLogger("hcserver.ping")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# The scheme and authority of an absolute-form request target (RFC 9112 3.2.2: http://host/path).
_ABSOLUTE = re.compile(r"(?i:https?)://[^/?#]*")
# Django's <slug:> converter: the route matches these, then uppercase is refused with a 400.
_SLUG = re.compile(r"[-a-zA-Z0-9_]+\Z")
_ACTIONS = {"": SUCCESS, "start": START, "fail": FAIL, "log": LOG}
PING_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})


def parse_ping_path(path: str) -> PingRoute | None:
    """Map a URL path to a ping route; None when no route matches (answered 404).

    Raises Invalid for a slug with uppercase letters (the reference's 400, before any lookup).

    >>> parse_ping_path("/ping/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/start").action
    'start'
    """
    # The commonest ping, /ping/<uuid> or /<uuid>, without the general parse below.
    if (len(path) == 42 and path.startswith("/ping/")) or len(path) == 37:
        found = _UUID.match(path, len(path) - 36)
        if found is not None and path[-37] == "/":
            return PingRoute(SUCCESS, uuid=found.group())
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


class Pinger:
    """Answers ping requests: (status, text, waiter) for what a request asked."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.proxies = TrustedProxies(ctx.settings.trusted_proxies)
        # Pings recorded, by the action their URL asks for: plain integers, read by /metrics.
        self.kinds = dict.fromkeys(_ACTIONS.values(), 0)

    def answer(
        self,
        method: str,
        target: str,
        remote_addr: str,
        scheme: str,
        ua: str = "",
        forwarded_for: str = "",
        forwarded_proto: str = "",
        body: bytes | None = None,
    ) -> tuple[int, str, Awaitable[None] | None]:
        """The answer to a ping request whose body has been read (the first PING_BODY_LIMIT bytes).

        With a waiter, the ping is recorded once it is done (durable mode, or a backlog at its
        limit): answer then, or 503 if it fails.
        """
        if method == "OPTIONS":
            return 204, "", None
        if method not in PING_METHODS:
            return 405, "method not allowed", None
        try:
            path, _, query = target.partition("?")
            route = parse_ping_path(path)
            if route is None:
                raise NotFound()
            rid, route.create = parse_query(query)
            if forwarded_for or forwarded_proto:
                proxies = self.proxies
                if proxies.trusts(remote_addr):
                    remote_addr = proxies.client(forwarded_for, remote_addr)
                    scheme = forwarded_scheme(forwarded_proto, scheme)
            request = PingRequest(
                action=route.action,
                method=method,
                scheme=scheme,
                remote_addr=remote_addr,
                ua=ua[:200] if len(ua) > 200 else ua,
                body=body,
                rid=rid,
                exitstatus=route.exitstatus,
            )
            created, waiter = record_ping(self.ctx, route, request)
            self.kinds[route.action] += 1
        except DomainError as e:
            return e.status, e.message, None
        except Exception:
            log.exception("ping %s %s failed", method, target[:200])
            return 500, "internal error", None
        if created:
            return 201, "Created", waiter
        return 200, "OK", waiter

"""Outgoing HTTP for user-supplied URLs, without letting users reach the server's own network.

A webhook URL is chosen by whoever holds an API key, so by default it may not point at loopback,
private, link-local, multicast, reserved or unspecified addresses (nor hide one inside an IPv6 form:
IPv4-mapped, 6to4, Teredo, NAT64). `allow_private=True` (the `INTEGRATIONS_ALLOW_PRIVATE_IPS`
setting) lifts that.

The check would be worthless if the HTTP client resolved the name again (DNS rebinding: the first
answer public, the second 127.0.0.1), so each hop is fetched through a `PinnedResolver` that only
hands out the addresses that were checked. The URL keeps its host name, so the Host header, TLS SNI
and certificate checks still use the name. Redirects are followed by hand, at most `max_redirects`,
each new hop resolved and checked again. Only the first `body_cap` bytes of a response are kept:
reading stops there and the connection is closed.

Libraries that open their own connections (Apprise) cannot be handed a resolver; `guarded_connections`
checks each address they connect to instead, at the moment they connect.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPHeaders, HTTPInputError
from tornado.iostream import StreamClosedError
from tornado.netutil import Resolver
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError, SimpleAsyncHTTPClient

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SockAddr = tuple[Any, ...]

REDIRECT_CODES = (301, 302, 303, 307, 308)
DEFAULT_BODY_CAP = 4096
DEFAULT_MAX_REDIRECTS = 3

# The well-known NAT64 prefix maps all of IPv4, private ranges included, into global-looking IPv6.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchError(Exception):
    """A request that got no usable answer. `permanent`: retrying the same URL cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class RefusedAddress(FetchError):
    """The private-address rule refused `address`; permanent, as the same target is refused again."""

    def __init__(self, address: IPAddress) -> None:
        super().__init__(f"Refusing to connect to a private address {address}", permanent=True)
        self.address = address


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The final answer: its status, the first `body_cap` bytes of its body, the URL that gave it."""

    code: int
    body: bytes
    url: str
    redirects: int = 0


# -- address policy ---------------------------------------------------------------------------------


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses.

    `is_global` alone is not enough: multicast ranges count as global to the ipaddress module.
    """
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    return ip.is_global


def parse_ip(text: str) -> IPAddress:
    # getaddrinfo may append "%scope" to link-local IPv6 addresses; ip_address accepts that form.
    return ipaddress.ip_address(text)


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host names literally (`10.0.0.5`, `[fe80::1]`), None for a name."""
    try:
        return parse_ip(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return None


def check_address(ip: IPAddress, allow_private: bool, allow_networks: Sequence[IPNetwork] = ()) -> None:
    """Raise a permanent `FetchError` unless alerts may connect to `ip`."""
    if allow_private or is_public(ip):
        return
    if any(ip.version == net.version and ip in net for net in allow_networks):
        return
    raise RefusedAddress(ip)


async def resolve_checked(
    host: str,
    port: int,
    *,
    allow_private: bool,
    timeout: float,
    allow_networks: Sequence[IPNetwork] = (),
) -> list[tuple[socket.AddressFamily, SockAddr]]:
    """Resolve `host` and check every address. One refused address refuses the host: a name that
    resolves to both a public and a private address is exactly what an attacker would set up."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            timeout=max(timeout, 0.0),
        )
    except TimeoutError:
        raise FetchError("Connection timed out") from None
    except (OSError, UnicodeError):
        raise FetchError("Could not resolve host") from None
    out: list[tuple[socket.AddressFamily, SockAddr]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        check_address(parse_ip(str(sockaddr[0])), allow_private, allow_networks)
        if (family, sockaddr) not in out:
            out.append((family, sockaddr))
    if not out:
        raise FetchError("Could not resolve host")
    return out


class PinnedResolver(Resolver):
    """A tornado resolver that answers one host name with addresses resolved and checked earlier."""

    def initialize(self, host: str, addresses: Sequence[tuple[socket.AddressFamily, SockAddr]]) -> None:
        self.host = host.lower()
        self.addresses = list(addresses)

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        if host.lower() != self.host:
            # Never fall back to a fresh lookup: that is the rebinding hole this class closes.
            raise OSError(f"{host} was not resolved and checked")
        return [
            (fam, (sockaddr[0], port, *sockaddr[2:]))
            for fam, sockaddr in self.addresses
            if family in (socket.AF_UNSPEC, fam)
        ]


# -- fetching ---------------------------------------------------------------------------------------


class _CapReached(HTTPInputError):
    """Raised from the streaming callback to stop reading; tornado then closes the connection.

    It is an `HTTPInputError` because tornado lets only those through its callback wrapper quietly
    (an info-level "Malformed HTTP message" line); any other exception is logged as uncaught.
    """


@dataclass(slots=True)
class _Capture:
    """Collects a response's status line, headers and the first `cap` body bytes."""

    cap: int
    code: int | None = None
    headers: HTTPHeaders = field(default_factory=HTTPHeaders)
    body: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def on_header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            self.code = int(line.split()[1])
            self.headers = HTTPHeaders()
        elif line.strip():
            self.headers.parse_line(line.rstrip("\r\n"))

    def on_chunk(self, chunk: bytes) -> None:
        room = self.cap - len(self.body)
        self.body += chunk[: max(room, 0)]
        if len(chunk) > room:
            self.truncated = True
            raise _CapReached(f"stopped reading the response after {self.cap} bytes")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        # A bad port: no origin to share. `_target` refuses the URL on the next hop.
        return None


def _target(url: str) -> tuple[str, int]:
    """Host and port of an http(s) URL; a permanent error for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("Invalid URL", permanent=True) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("Invalid URL", permanent=True)
    return parts.hostname, port or (443 if scheme == "https" else 80)


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its `user:password@` part, and that user name and password, percent-decoded.

    A user name without a password stands for an empty password, as curl sends it: tornado would
    otherwise fail an assertion on such a URL.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc)), (unquote(parts.username), unquote(parts.password or ""))


def _describe(exc: BaseException) -> FetchError:
    """Turn what tornado raises into the short messages the reference shows (from libcurl's codes)."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, HTTPTimeoutError | TimeoutError):
        return FetchError("Connection timed out")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return FetchError("TLS handshake failed")
    if isinstance(exc, HTTPStreamClosedError | StreamClosedError):
        return FetchError("Connection closed unexpectedly")
    if isinstance(exc, ConnectionError | OSError):
        return FetchError("Connection failed")
    if isinstance(exc, HTTPClientError):
        return FetchError(f"HTTP request failed: {exc.message}")
    if isinstance(exc, ValueError):
        return FetchError(f"Invalid request: {exc}", permanent=True)
    return FetchError(f"HTTP request failed: {type(exc).__name__}")


async def _fetch_once(
    method: str,
    url: str,
    host: str,
    addresses: Sequence[tuple[socket.AddressFamily, SockAddr]],
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    body_cap: int,
    user_agent: str,
) -> tuple[int, HTTPHeaders, bytes]:
    capture = _Capture(cap=body_cap)
    url, credentials = _split_credentials(url)
    if any(k.lower() == "authorization" for k in headers):
        # The user's own Authorization header wins over credentials in the URL, as with curl.
        credentials = None
    # A fresh client per hop: its resolver is pinned to this hop's checked addresses. max_clients=1
    # and no shared instance, so nothing is pooled or queued behind other alerts.
    client = SimpleAsyncHTTPClient(force_instance=True, resolver=PinnedResolver(host, addresses), max_clients=1)
    request = HTTPRequest(
        url,
        method=method,
        headers=dict(headers),
        # tornado insists on a body for POST/PUT and forbids one for GET.
        body=(body or b"") if method in ("POST", "PUT") else None,
        follow_redirects=False,
        auth_username=credentials[0] if credentials else None,
        auth_password=credentials[1] if credentials else None,
        auth_mode="basic" if credentials else None,
        connect_timeout=timeout,
        request_timeout=timeout,
        # tornado's user_agent would override the user's own User-Agent header; the user's wins.
        user_agent=None if any(k.lower() == "user-agent" for k in headers) else user_agent,
        # The body is only read up to the cap, never interpreted: no point inflating it.
        decompress_response=False,
        header_callback=capture.on_header,
        streaming_callback=capture.on_chunk,
    )
    try:
        response = await client.fetch(request, raise_error=False)
    except Exception as exc:
        # Stopping at the cap surfaces as "connection closed": the answer we kept is still good.
        if capture.truncated and capture.code is not None:
            return capture.code, capture.headers, bytes(capture.body)
        raise _describe(exc) from exc
    finally:
        client.close()
    if response.error is not None and response.code == 599:
        raise _describe(response.error)
    return response.code, response.headers, bytes(capture.body)


async def safe_fetch(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    body_cap: int = DEFAULT_BODY_CAP,
    user_agent: str = "hcserver",
    allow_networks: Sequence[IPNetwork] = (),
) -> FetchResult:
    """Make one request, following up to `max_redirects` redirects, all within `timeout` seconds.

    Returns whatever status the final hop answered; raises `FetchError` when there is none (refused
    address, DNS failure, timeout, connection failure, too many redirects). `allow_networks` exempts
    specific networks from the private-address refusal.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    method = method.upper()
    current_headers = dict(headers or {})
    for hop in range(max_redirects + 1):
        host, port = _target(url)
        addresses = await resolve_checked(
            host, port, allow_private=allow_private, timeout=deadline - loop.time(), allow_networks=allow_networks
        )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise FetchError("Connection timed out")
        code, response_headers, data = await _fetch_once(
            method, url, host, addresses, current_headers, body, remaining, body_cap, user_agent
        )
        location = response_headers.get("Location")
        if code not in REDIRECT_CODES or not location:
            return FetchResult(code=code, body=data, url=url, redirects=hop)
        if hop == max_redirects:
            break
        next_url = urljoin(url, location)
        if urlsplit(next_url).scheme.lower() not in ("http", "https"):
            raise FetchError("Redirect to an unsupported URL", permanent=True)
        if _origin(next_url) is None or _origin(next_url) != _origin(url):
            # The user's headers often carry credentials meant for the first host only.
            current_headers = {}
        if code == 303 or (code in (301, 302) and method == "POST"):
            # What browsers (and tornado's own redirect handling) do: the next hop is a plain GET.
            method, body = "GET", None
        url = next_url
    raise FetchError("Too many redirects")


# -- connections that other libraries make -----------------------------------------------------------


class RefusedConnection(ConnectionRefusedError):
    """Raised into a library's socket call by `guarded_connections`. An OSError, so the library
    handles it as the failed connection it is."""


@dataclass(slots=True)
class ConnectionGuard:
    """The state of one `guarded_connections` block: the first address it refused, if any."""

    refused: IPAddress | None = None

    def check(self, family: int, address: object) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or not address:
            return  # Unix sockets and other local endpoints are not network targets.
        host = address[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        ip = ip_literal(str(host))
        if ip is not None:
            ips = [ip]
        else:
            # Given a name, the socket module resolves it itself: resolve it here and check every answer.
            try:
                infos = socket.getaddrinfo(str(host), address[1] if len(address) > 1 else 0, family)
            except (OSError, UnicodeError):
                return  # the connection fails the same way
            ips = [parse_ip(str(info[4][0])) for info in infos]
        for ip in ips:
            if not is_public(ip):
                if self.refused is None:
                    self.refused = ip
                raise RefusedConnection(f"Refusing to connect to a private address {ip}")


_GUARD: ContextVar[ConnectionGuard | None] = ContextVar("hcserver_connection_guard", default=None)
_GUARDED_EVENTS = frozenset({"socket.connect", "socket.sendto"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _GUARDED_EVENTS:
        guard = _GUARD.get()
        if guard is not None:
            guard.check(args[0].family, args[1])


@functools.cache
def _install_audit_hook() -> None:
    # Process-wide and permanent (audit hooks cannot be removed); outside a guarded block it returns
    # at once. The ping and API paths raise no socket audit events, so they do not pay for it.
    sys.addaudithook(_audit)


@contextmanager
def guarded_connections() -> Iterator[ConnectionGuard]:
    """Refuse every connection to a non-public address made inside the block.

    For libraries that open their own connections (Apprise's plugins): an audit hook sees each
    `socket.connect` and `socket.sendto` before it happens and raises `RefusedConnection` into it.
    The block is a context variable, so it covers the current thread and the threads started with a
    copy of its context, and nothing else in the process. It checks the address actually used, so
    neither a redirect nor a DNS answer that changed since an earlier check gets around it.
    """
    _install_audit_hook()
    guard = ConnectionGuard()
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)

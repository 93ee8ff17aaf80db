"""Real receivers on loopback for the alert tests: a tornado HTTP server and an aiosmtpd SMTP server.

Tests are plain functions that call `run(coro)`: each gets a fresh asyncio loop, and the HTTP
receiver lives inside it (`async with Receiver() as rx:`). The SMTP server runs in aiosmtpd's own
thread, so it is an ordinary fixture (exposed through conftest.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.templates import AlertContext

T = TypeVar("T")

# Flip at 2024-01-02T03:04:05+00:00, last ping a minute earlier.
FLIP_TIME = 1704164645.0


def run(coro: Coroutine[Any, Any, T], limit: float = 5.0) -> T:
    """Run one test coroutine on a fresh loop; a hung test fails in `limit` seconds instead of hanging."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


def make_ctx(**overrides: Any) -> AlertContext:
    values: dict[str, Any] = {
        "code": "5d0b7e2c-5f27-4a5e-9b9e-8a4b1f2c3d4e",
        "name": "Nightly backup",
        "slug": "nightly-backup",
        "tags": "prod db",
        "status": "down",
        "now": FLIP_TIME,
        "check_json": {"name": "Nightly backup", "status": "down", "tags": "prod db"},
        "body": b"backup failed: disk full\n",
        "exitstatus": 1,
        "project_name": "Ops",
        "last_ping": FLIP_TIME - 60,
    }
    values.update(overrides)
    return AlertContext(**values)


def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


# -- HTTP receiver ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Receiver:
    """A webhook target. Paths choose the behaviour:

    /                200
    /status/N        answer N
    /flaky/N         answer 500 to the first N requests (per path), then 200
    /hang            never answer (until the test ends)
    /redirect/N      302 to /redirect/N-1; /redirect/0 answers 200
    /goto?url=U      302 to U (any URL, any host)
    /see-other       303 to /status/200
    /big             200 with a 1 MB body
    """

    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    host: str = "127.0.0.1"
    release: asyncio.Event = field(default_factory=asyncio.Event)
    counts: dict[str, int] = field(default_factory=dict)
    server: HTTPServer | None = None

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        sock, self.port = bind_unused_port()
        self.server = HTTPServer(Application([(r"/.*", _Handler, {"rx": self})]))
        self.server.add_sockets([sock])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.server is not None
        self.server.stop()
        await asyncio.sleep(0)
        await self.server.close_all_connections()


class _Handler(RequestHandler):
    def initialize(self, rx: Receiver) -> None:
        self.rx = rx

    def check_xsrf_cookie(self) -> None:
        return None

    async def _respond(self) -> None:
        req = self.request
        self.rx.requests.append(Recorded(req.method or "", req.path, req.query, dict(req.headers.get_all()), req.body))
        parts = req.path.strip("/").split("/")
        head, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if head == "":
            # ntfy and other services publish to the server's root.
            self.finish("ok")
        elif head == "status":
            self.set_status(int(arg))
            self.finish(None if int(arg) in (204, 304) else "status")
        elif head == "flaky":
            seen = self.rx.counts.get(req.path, 0)
            self.rx.counts[req.path] = seen + 1
            self.set_status(500 if seen < int(arg) else 200)
            self.finish("flaky")
        elif head == "hang":
            await self.rx.release.wait()
        elif head == "redirect":
            n = int(arg)
            if n == 0:
                self.finish("arrived")
            else:
                self.redirect(f"/redirect/{n - 1}")
        elif head == "goto":
            self.redirect(self.get_argument("url"))
        elif head == "see-other":
            self.redirect("/status/200", status=303)
        elif head == "big":
            self.finish(b"x" * 1_000_000)
        else:
            self.set_status(404)
            self.finish()

    async def get(self, *args: str) -> None:
        await self._respond()

    async def post(self, *args: str) -> None:
        await self._respond()

    async def put(self, *args: str) -> None:
        await self._respond()


# -- SMTP receiver ----------------------------------------------------------------------------------


@dataclass(slots=True)
class SMTPRecorder:
    """aiosmtpd handler: keeps accepted messages; refuses recipients by their local part."""

    messages: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@dataclass(frozen=True, slots=True)
class SMTPServer:
    port: int
    recorder: SMTPRecorder
    logins: list[tuple[bytes, bytes]]

    def settings(self, **overrides: Any) -> AlertSettings:
        values: dict[str, Any] = {
            "email_host": "127.0.0.1",
            "email_port": self.port,
            "default_from_email": "alerts@hc.example.org",
            "timeout": 2.0,
        }
        values.update(overrides)
        return AlertSettings(**values)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    recorder = SMTPRecorder()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        # Loopback tests have no TLS; aiosmtpd otherwise refuses AUTH on a plain connection.
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SMTPServer(port=port, recorder=recorder, logins=logins)
    finally:
        controller.stop()


async def silent_tcp_server(release: asyncio.Event) -> tuple[asyncio.Server, int]:
    """A TCP server that accepts and then says nothing: an SMTP server that never greets."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, family=socket.AF_INET)
    port = server.sockets[0].getsockname()[1]
    return server, port


async def settle(aw: Awaitable[Any] | None = None) -> None:
    """Let callbacks scheduled by a just-finished request run before the loop closes."""
    if aw is not None:
        await aw
    await asyncio.sleep(0.01)


# -- DNS and connections under the tests' control ---------------------------------------------------


@dataclass(slots=True)
class FakeDNS:
    """A resolver the test controls, installed as `socket.getaddrinfo` (which asyncio, tornado and
    Apprise's HTTP client all call). Each name in `answers` has a list of answers, given out in turn,
    the last one repeating; "localhost" and literal addresses resolve as usual; any other name fails,
    so no test sends a DNS query. `lookups` lists the names asked for."""

    answers: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name == "localhost" or _is_literal(name):
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.lookups.append(name)
        turns = self.answers.get(name)
        if not turns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = turns[min(self.lookups.count(name), len(turns)) - 1]
        out = []
        for address in answer:
            for info in _real_getaddrinfo(address, port, family, type, proto, flags | socket.AI_NUMERICHOST):
                out.append(info)
        return out


_real_getaddrinfo = socket.getaddrinfo


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    dns = FakeDNS({})
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    yield dns


@dataclass(slots=True)
class OutsideConnections:
    """While `active`, every attempt to connect (or send a datagram) to anything but loopback is
    recorded in `attempts` and stopped before it happens, with a ConnectionRefusedError."""

    attempts: list[str] = field(default_factory=list)
    active: bool = False


OUTSIDE = OutsideConnections()


def _stop_outside_connections(event: str, args: tuple[Any, ...]) -> None:
    if not OUTSIDE.active or event not in ("socket.connect", "socket.sendto"):
        return
    family, address = args[0].family, args[1]
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    host = str(address[0])
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        OUTSIDE.attempts.append(f"{host} port {address[1]}")
        raise ConnectionRefusedError(f"the tests connect to loopback only, not to {host}")


# Added when the tests are collected, so it runs before any audit hook the code under test adds, and
# sees every attempt that code makes.
sys.addaudithook(_stop_outside_connections)


@pytest.fixture
def outside_connections() -> Iterator[OutsideConnections]:
    OUTSIDE.attempts.clear()
    OUTSIDE.active = True
    try:
        yield OUTSIDE
    finally:
        OUTSIDE.active = False

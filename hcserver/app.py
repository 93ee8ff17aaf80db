"""Assemble the server: context, tornado Application, the HTTP layer (web/http1.py); start and stop.

server = HcServer(ctx)
await server.listen()          # binds settings.host/port (port 0 = any free port)
...
await server.stop()            # stop accepting, finish what is in flight
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from hcserver.context import Context
from hcserver.domain.projects import IssuedKeys, issue_keys
from hcserver.services import add_project
from hcserver.web.http1 import HttpServer
from hcserver.web.routes import app_paths, make_app

log = logging.getLogger("hcserver")

# Descriptors kept back from HC_MAX_CONNECTIONS's default. At rest the server holds about 15 (stdio,
# the listening sockets, epoll, the SQLite file with its -wal and -shm, the lock file, the writer's
# pipes); the rest is for what comes and goes: webhook and SMTP connections of alert deliveries (one
# per check and channel being alerted), DNS lookups, reads of the store.
FD_RESERVE = 64
# accept() failures that mean "no descriptor or buffer to give": the connection stays in the backlog.
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# After such a failure the listening socket leaves the event loop for this long: the waiting
# connection keeps it readable, so otherwise the loop would retry at once, spinning a core.
ACCEPT_PAUSE_S = 0.1
# Refusals in one go before the event loop gets a turn.
_REFUSE_AT_ONCE = 128


def default_max_connections() -> int:
    """HC_MAX_CONNECTIONS when unset: the soft open-file limit minus FD_RESERVE (half of a tiny limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000_000
    return max(soft - FD_RESERVE, soft // 2)


@dataclass(slots=True)
class ConnectionCounts:
    """What `/api/v3/status/?verbose=1` shows under "connections"."""

    max: int
    open: int = 0
    refused: int = 0  # closed at once, past `max`
    accept_errors: int = 0  # accept() failed for want of a file descriptor

    def as_json(self) -> dict[str, int]:
        return {"open": self.open, "max": self.max, "refused": self.refused, "accept_errors": self.accept_errors}


class Throttled:
    """Warnings about repeated events, at most one line per `every` seconds, each with the number of
    events since the line before (`noun` names them)."""

    def __init__(self, message: str, noun: str, every: float = 1.0) -> None:
        self.message = message
        self.suffix = f" (%d {noun} since the last report)"
        self.every = every
        self.last = -every
        self.unreported = 0

    def note(self, *args: object) -> None:
        """One more event; report it unless a line went out less than `every` seconds ago."""
        self.unreported += 1
        self.report(self.message, *args)

    def report(self, message: str, *args: object) -> bool:
        """Log `message` with the count, unless a line went out less than `every` seconds ago."""
        now = time.monotonic()
        if now - self.last < self.every:
            return False
        log.warning(message + self.suffix, *args, self.unreported)
        self.last = now
        self.unreported = 0
        return True


class Listener(socket.socket):
    """A listening socket whose accept() enforces HC_MAX_CONNECTIONS and survives running out of descriptors.

    tornado's accept loop (tornado.netutil.add_accept_handler) calls accept() until it raises
    BlockingIOError. Out of file descriptors accept() raises EMFILE instead: tornado lets it escape,
    asyncio logs it with a traceback, and as the connection is still waiting the loop tries again at
    once, about 5 MB of log a second. Here such a failure is logged at most once a second with a
    count, the socket sits out ACCEPT_PAUSE_S (waiting connections stay in the kernel's backlog), and
    tornado hears "nothing more to accept". A connection past the cap is accepted and closed at once,
    so it costs no descriptor beyond that moment and the client is not left waiting.
    """

    counts: ConnectionCounts
    out_of_descriptors: Throttled
    refusing: Throttled
    failing: bool

    @classmethod
    def adopt(cls, sock: socket.socket, counts: ConnectionCounts) -> Listener:
        listener = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        listener.setblocking(False)
        listener.counts = counts
        listener.failing = False
        listener.out_of_descriptors = Throttled(
            "cannot accept connections: %s; %d open; retrying every %.1f s until some close", "failures"
        )
        listener.refusing = Throttled("refused a connection: %d open, the most HC_MAX_CONNECTIONS allows", "refused")
        return listener

    def accept(self) -> tuple[socket.socket, Any]:
        counts = self.counts
        for _ in range(_REFUSE_AT_ONCE):
            try:
                conn, address = super().accept()
            except OSError as e:
                if e.errno not in _OUT_OF_DESCRIPTORS:
                    raise  # BlockingIOError (nothing waiting) and the rest: tornado knows them
                counts.accept_errors += 1
                self.failing = True
                self.out_of_descriptors.note(e.strerror, counts.open, ACCEPT_PAUSE_S)
                self._pause()
                raise BlockingIOError(errno.EAGAIN, "paused") from None
            if counts.open < counts.max:
                if self.failing and self.out_of_descriptors.report("accepting connections again"):
                    self.failing = False
                return conn, address
            conn.close()
            counts.refused += 1
            self.refusing.note(counts.open)
        raise BlockingIOError(errno.EAGAIN, "refused enough for now")

    def _pause(self) -> None:
        loop = IOLoop.current()
        loop.update_handler(self, 0)
        loop.call_later(ACCEPT_PAUSE_S, self._resume)

    def _resume(self) -> None:
        if self.fileno() != -1:  # not closed by a stop in the meantime
            IOLoop.current().update_handler(self, IOLoop.READ)


class HcServer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = make_app(ctx)
        settings = ctx.settings
        self.connections = ConnectionCounts(settings.max_connections or default_max_connections())
        # The status handler reads the counts through the Application's settings.
        self.app.settings["connections"] = self.connections
        ssl_context = None
        if settings.certfile:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(settings.certfile, settings.keyfile or None)
        self.http = HttpServer(
            ctx, self.app, app_paths(), ssl_context=ssl_context, accepted=self._opened, released=self._closed
        )
        self.sockets: list[socket.socket] = []

    def _opened(self) -> None:
        self.connections.open += 1

    def _closed(self) -> None:
        self.connections.open -= 1

    async def listen(self) -> list[tuple[str, int]]:
        """Bind and start serving; return the (address, port) pairs bound."""
        host = self.ctx.settings.host
        # "::" asks for every address: tornado then binds an IPv6 and an IPv4 socket.
        address = None if host in ("::", "") else host
        bound = bind_sockets(self.ctx.settings.port, address=address, backlog=1024)
        self.sockets = [Listener.adopt(s, self.connections) for s in bound]
        self.http.add_sockets(self.sockets)
        return [s.getsockname()[:2] for s in self.sockets]

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting; close idle connections; answer the requests in flight, then close."""
        await self.http.stop(timeout)
        for sock in self.sockets:
            sock.close()


def ensure_project(ctx: Context) -> IssuedKeys | None:
    """On a store with no project, make one; return its keys so they can be shown once.

    HC_API_KEY, HC_API_KEY_READONLY and HC_PING_KEY give the keys of that first project only. On a
    store that already has a project, a key setting that no project accepts is ignored, and a warning
    says so: otherwise the API would answer "wrong api key" with no hint why.
    """
    if ctx.index.projects:
        ignored = _ignored_key_settings(ctx)
        if ignored:
            log.warning(
                "%s ignored: this store already has a project, and these settings only give the keys of the "
                "first project, made on the first start with a new store. To replace a project's keys, stop the "
                "server and run `hcserver keys --rotate` (it makes new ones and prints them); to use these keys, "
                "start with a new --db file; for a project with new generated keys on this store, create one "
                "through the projects API (HC_ADMIN_KEY).",
                ", ".join(ignored),
            )
        return None
    settings = ctx.settings
    keys = issue_keys(settings.api_key or None, settings.api_key_readonly or None, settings.ping_key or None)
    add_project(ctx, "Default", keys)
    return keys


def _ignored_key_settings(ctx: Context) -> list[str]:
    """The key settings given whose key no stored project accepts in that role."""
    index, settings = ctx.index, ctx.settings
    ignored = []
    for name, key, readonly in (
        ("HC_API_KEY", settings.api_key, False),
        ("HC_API_KEY_READONLY", settings.api_key_readonly, True),
    ):
        found = index.project_by_api_key(key) if key else None
        if key and (found is None or found[1] != readonly):
            ignored.append(name)
    if settings.ping_key and index.project_by_ping_key(settings.ping_key) is None:
        ignored.append("HC_PING_KEY")
    return ignored

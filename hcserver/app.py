"""Assemble the server: context, tornado Application, ping dispatcher, HTTP server; start and stop.

server = HcServer(ctx)
await server.listen()          # binds settings.host/port (port 0 = any free port)
...
await server.stop()            # stop accepting, finish what is in flight
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from hcserver.context import Context
from hcserver.domain.projects import IssuedKeys, issue_keys
from hcserver.web.api import create_project
from hcserver.web.ping import TORNADO_MAX_HEADER_SIZE, Dispatcher
from hcserver.web.routes import make_app

log = logging.getLogger("hcserver")

# Tornado's own cap on request bodies is lifted: the ping path streams bodies and enforces
# HC_MAX_REQUEST_BODY itself (to answer 413 instead of dropping the connection), and API
# requests set HC_MAX_API_BODY per request.
_UNCAPPED = 2**62


class HcServer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = make_app(ctx)
        self.dispatcher = Dispatcher(ctx, self.app)
        settings = ctx.settings
        ssl_options = None
        if settings.certfile:
            ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_options.load_cert_chain(settings.certfile, settings.keyfile or None)
        self.http = HTTPServer(
            self.dispatcher,
            ssl_options=ssl_options,
            idle_connection_timeout=settings.idle_timeout,
            body_timeout=settings.body_timeout,
            max_body_size=_UNCAPPED,
            max_header_size=TORNADO_MAX_HEADER_SIZE,
            decompress_request=False,
        )
        self.sockets: list[socket.socket] = []

    async def listen(self) -> list[tuple[str, int]]:
        """Bind and start serving; return the (address, port) pairs bound."""
        host = self.ctx.settings.host
        # "::" asks for every address: tornado then binds an IPv6 and an IPv4 socket.
        address = None if host in ("::", "") else host
        self.sockets = bind_sockets(self.ctx.settings.port, address=address, backlog=1024)
        self.http.add_sockets(self.sockets)
        return [s.getsockname()[:2] for s in self.sockets]

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, then close connections once their current request is answered."""
        self.http.stop()
        try:
            await asyncio.wait_for(self.http.close_all_connections(), timeout)
        except TimeoutError:
            log.warning("some connections were still open after %.0f s; closing them", timeout)


def ensure_project(ctx: Context) -> IssuedKeys | None:
    """On a store with no project, make one; return its keys so they can be shown once."""
    if ctx.index.projects:
        return None
    settings = ctx.settings
    keys = issue_keys(settings.api_key or None, settings.api_key_readonly or None, settings.ping_key or None)
    project, _ = create_project(ctx, "Default", keys)
    ctx.recorder.project_changed(project)
    return keys

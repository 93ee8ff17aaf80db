"""What the baselines share: the answer they give, a command line (--host, --port) and running
until SIGTERM or SIGINT.

Every baseline answers any request with `answer()`: "OK" and the five headers hcserver puts on a
ping answer, byte for byte, so that the bytes on the wire are the same for ours and the baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import signal
from collections.abc import Awaitable, Callable

from tornado.tcpserver import TCPServer

# The headers of hcserver's answer to a ping, in its order (as `curl -i` shows them).
PING_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Access-Control-Allow-Origin", "*"),
    ("Cache-Control", "no-cache"),
    ("Ping-Body-Limit", "10000"),
    ("Content-Length", "2"),
)
BODY = b"OK"

_HEAD = b"HTTP/1.1 200 OK\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in PING_HEADERS)
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def answer(head: bool = False, close: bool = False) -> bytes:
    """The whole answer to a request: status line, headers, and the body unless it was a HEAD.
    `close`: the connection closes after it, which the answer says as Tornado's would."""
    return _HEAD + (b"Connection: close\r\n" if close else b"") + b"\r\n" + (b"" if head else BODY)


def bad_request() -> bytes:
    """The answer to bytes that do not parse as HTTP/1.1; the connection is closed after it."""
    return _BAD_REQUEST


ANSWER_GET = answer()
ANSWER_HEAD = answer(head=True)

# A baseline's start function returns a Tornado server (stopped with .stop()) or, for one built on
# asyncio directly, an awaitable of an asyncio server (stopped with .close()).
Started = TCPServer | Awaitable[asyncio.AbstractServer]


async def _serve(start: Callable[[str, int], Started], host: str, port: int) -> None:
    started = start(host, port)
    server = await started if inspect.isawaitable(started) else started
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if isinstance(server, asyncio.AbstractServer):
        server.close()
    else:
        server.stop()


def run(start: Callable[[str, int], Started], description: str, argv: list[str] | None = None) -> None:
    """Parse --host/--port, then serve with `start(host, port)` until asked to stop.

    `start` runs inside the event loop Tornado uses (asyncio's), so asyncio and Tornado servers
    share the one loop, as they would in hcserver."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(start, args.host, args.port))

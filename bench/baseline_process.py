"""What both baselines share: a command line (--host, --port) and running until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

from tornado.httpserver import HTTPServer


async def _serve(start: Callable[[str, int], HTTPServer], host: str, port: int) -> None:
    server = start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def run(start: Callable[[str, int], HTTPServer], description: str, argv: list[str] | None = None) -> None:
    """Parse --host/--port, then serve with `start(host, port)` until asked to stop."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(start, args.host, args.port))

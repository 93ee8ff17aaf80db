"""Baseline: a bare Tornado `web.Application` whose one handler answers "OK" to any path.

python -m bench.baseline_web --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from tornado import web


class OkHandler(web.RequestHandler):
    def get(self, _path: str) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(b"OK")

    # The ping API answers HEAD/POST/PUT alike; so does the baseline, to compare like with like.
    post = put = get

    def head(self, _path: str) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")


def make_app() -> web.Application:
    return web.Application([(r"/(.*)", OkHandler)])


async def serve(host: str, port: int) -> None:
    server = make_app().listen(port, address=host, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

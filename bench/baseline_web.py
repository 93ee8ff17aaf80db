"""Baseline: a bare Tornado `web.Application` whose one handler answers "OK" to any path.

python -m bench.baseline_web --port 8001
"""

from __future__ import annotations

from tornado import web
from tornado.httpserver import HTTPServer

from bench.baseline_process import run


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


def start(host: str, port: int) -> HTTPServer:
    return make_app().listen(port, address=host, backlog=4096)


def main(argv: list[str] | None = None) -> None:
    run(start, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    main()

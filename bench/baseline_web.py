"""Baseline: a bare Tornado `web.Application` whose one handler answers "OK" to any path.

It sends the headers of a ping answer and no others (no Server, Date or Etag), as hcserver does.

python -m bench.baseline_web --port 8001
"""

from __future__ import annotations

from tornado import web
from tornado.httpserver import HTTPServer

from bench.baseline_process import BODY, PING_HEADERS, run


class OkHandler(web.RequestHandler):
    def clear(self) -> None:
        super().clear()
        self.clear_header("Server")
        self.clear_header("Date")
        for name, value in PING_HEADERS:
            if name != "Content-Length":
                self.set_header(name, value)

    def compute_etag(self) -> None:
        return None

    def get(self, _path: str) -> None:
        self.write(BODY)

    # The ping API answers HEAD/POST/PUT alike; so does the baseline, to compare like with like.
    post = put = get

    def head(self, _path: str) -> None:
        self.set_header("Content-Length", str(len(BODY)))


def make_app() -> web.Application:
    return web.Application([(r"/(.*)", OkHandler)])


def start(host: str, port: int) -> HTTPServer:
    return make_app().listen(port, address=host, backlog=4096)


def main(argv: list[str] | None = None) -> None:
    run(start, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    main()

"""Baseline: a bare `HTTPServerConnectionDelegate` answering "OK", below `web.Application`.

This is the floor for any server built on Tornado's HTTP/1.1 layer on this machine: its parsing and
keep-alive, nothing else. It answers with the bytes of a ping answer (`baseline_process.answer`).

    python -m bench.baseline_delegate --port 8002
"""

from __future__ import annotations

from tornado import httputil
from tornado.httpserver import HTTPServer

from bench.baseline_process import BODY, PING_HEADERS, run


class _OkMessage(httputil.HTTPMessageDelegate):
    def __init__(self, connection: httputil.HTTPConnection) -> None:
        self.connection = connection
        self.head = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.head = start_line.method == "HEAD"

    def data_received(self, chunk: bytes) -> None:
        # Bodies are read and dropped, as a ping handler past its body limit would.
        pass

    def finish(self) -> None:
        headers = httputil.HTTPHeaders()
        for name, value in PING_HEADERS:
            headers.add(name, value)
        start = httputil.ResponseStartLine("HTTP/1.1", 200, "OK")
        self.connection.write_headers(start, headers, None if self.head else BODY)
        self.connection.finish()


class OkDelegate(httputil.HTTPServerConnectionDelegate):
    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _OkMessage(request_conn)


def start(host: str, port: int) -> HTTPServer:
    server = HTTPServer(OkDelegate())
    server.listen(port, address=host, backlog=4096)
    return server


def main(argv: list[str] | None = None) -> None:
    run(start, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    main()

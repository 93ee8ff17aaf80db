"""The Tornado internals hcserver/web/tornado_internals.py leans on still behave as it assumes."""

from __future__ import annotations

import tornado
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application, RequestHandler

from hcserver.web.tornado_internals import TESTED_WITH, PeerContext, reason


def test_pinned_to_the_installed_tornado():
    # A new Tornado: run this file, check each use in tornado_internals.py, then move TESTED_WITH.
    assert tornado.version == TESTED_WITH


def test_a_request_takes_the_peer_from_its_connections_context():
    connection = _Connection()
    connection.context = PeerContext(("::1", 4321, 0, 0), "https")
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "hc.test"}),
        connection=connection,
    )  # type: ignore[arg-type]
    assert (request.remote_ip, request.protocol) == ("::1", "https")


class _Connection:
    context: PeerContext | None = None

    def set_close_callback(self, callback: object) -> None:
        pass


def test_reason_is_the_status_phrase():
    start = RequestStartLine("GET", "/", "HTTP/1.1")
    headers = HTTPHeaders({"Host": "hc.test"})
    request = HTTPServerRequest(start_line=start, headers=headers, connection=_Connection())  # type: ignore[arg-type]
    handler = RequestHandler(Application(), request)
    handler.set_status(404)
    assert reason(handler) == "Not Found"

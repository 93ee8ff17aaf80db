"""The Tornado internals hcserver/web/tornado_internals.py leans on still behave as it assumes."""

from __future__ import annotations

import tornado
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application, RequestHandler

from hcserver.web.tornado_internals import TESTED_WITH, copy_headers, copy_headers_works, peer, reason


def test_pinned_to_the_installed_tornado():
    # A new Tornado: run this file, check each use in tornado_internals.py, then move TESTED_WITH.
    assert tornado.version == TESTED_WITH


def test_copy_headers_is_a_copy_that_leaves_the_template_alone():
    template = HTTPHeaders()
    template["Content-Type"] = "text/plain"
    template["Content-Length"] = "2"
    copy = copy_headers(template)
    assert list(copy.get_all()) == list(template.get_all())
    copy.add("Content-Type", "text/html")
    copy["Connection"] = "close"
    copy["Content-Length"] = "3"
    assert list(template.get_all()) == [("Content-Type", "text/plain"), ("Content-Length", "2")]
    assert copy.get_list("Content-Type") == ["text/plain", "text/html"] and copy["Content-Length"] == "3"
    assert copy_headers_works()


def test_peer_reads_the_connection_context(live):
    uuid = live.create(name="x")["uuid"]
    assert live.ping(f"/ping/{uuid}").status_code == 200
    pings = live.api("GET", f"checks/{uuid}/pings/").json()["pings"]
    assert (pings[0]["remote_addr"], pings[0]["scheme"]) == ("127.0.0.1", "http")


def test_peer_without_a_context():
    assert peer(object()) == ("", "http")  # type: ignore[arg-type]


class _Connection:
    def set_close_callback(self, callback: object) -> None:
        pass


def test_reason_is_the_status_phrase():
    start = RequestStartLine("GET", "/", "HTTP/1.1")
    headers = HTTPHeaders({"Host": "hc.test"})
    request = HTTPServerRequest(start_line=start, headers=headers, connection=_Connection())  # type: ignore[arg-type]
    handler = RequestHandler(Application(), request)
    handler.set_status(404)
    assert reason(handler) == "Not Found"

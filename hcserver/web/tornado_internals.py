"""Every use of Tornado's private attributes, in one place; tests/unit/test_tornado_internals.py checks
each against the installed version (TESTED_WITH) and fails when Tornado changes, so they are
looked at again then.
"""

from __future__ import annotations

from typing import Any

from tornado.web import RequestHandler

TESTED_WITH = "6.6.1"


class PeerContext:
    """The `context` of a connection, where tornado's HTTPServerRequest looks for `remote_ip` and
    `protocol` (`request.remote_ip`, `request.protocol`); the HTTPConnection interface does not name it."""

    __slots__ = ("address", "protocol", "remote_ip")

    def __init__(self, address: Any, protocol: str) -> None:
        self.address = address
        self.remote_ip: str = address[0] if isinstance(address, tuple) else ""
        self.protocol = protocol


def reason(handler: RequestHandler) -> str:
    """The reason phrase of the handler's status ("Not Found"), which tornado keeps private."""
    return str(handler._reason)

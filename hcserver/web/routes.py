"""Every route of the tornado.web Application (the ping paths never get here: see web/ping.py)."""

from __future__ import annotations

from typing import Any

from tornado.web import Application

from hcserver.context import Context
from hcserver.web import badges, channels_api
from hcserver.web.api import (
    UUID,
    UUID_OR_KEY,
    BadgesHandler,
    CheckHandler,
    ChecksHandler,
    FlipsHandler,
    NotFoundHandler,
    PauseHandler,
    PingBodyHandler,
    PingsHandler,
    ProjectHandler,
    ProjectsHandler,
    RootHandler,
    StatusHandler,
    V,
)


def make_app(ctx: Context) -> Application:
    routes: list[Any] = [
        (r"/", RootHandler),
        (V + r"/checks/", ChecksHandler),
        (V + r"/checks/" + UUID_OR_KEY, CheckHandler),
        (V + r"/checks/" + UUID + r"/(?P<action>pause|resume)", PauseHandler),
        (V + r"/checks/" + UUID + r"/pings/", PingsHandler),
        (V + r"/checks/" + UUID + r"/pings/(?P<n>[0-9]+)/body", PingBodyHandler),
        (V + r"/checks/" + UUID_OR_KEY + r"/flips/", FlipsHandler),
        *channels_api.routes(V),
        (V + r"/badges/", BadgesHandler),
        (V + r"/status/", StatusHandler),
        (V + r"/projects/", ProjectsHandler),
        (V + r"/projects/(?P<project_id>[0-9a-f-]{36})", ProjectHandler),
        *badges.routes(),
    ]
    return Application(
        [(pattern, handler, {"ctx": ctx}) for pattern, handler in routes],
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        compress_response=False,
    )

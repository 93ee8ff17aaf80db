"""The route table: every path the tornado.web Application serves. The rest are pings (web/ping.py).

`app_paths()` derives from the same table which requests the HTTP layer (web/http1.py) hands to
the Application, so a route added here is served by its handler, not answered as an unknown ping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tornado.web import Application

from hcserver.context import Context
from hcserver.web import badges, channels_api, dashboard, metrics
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
    StatusHandler,
    V,
)

# Where the fixed start of a pattern ends: the first character with a meaning in a regex.
_SPECIAL = re.compile(r"[\\()\[\]{}?*+.|^$]")


def route_table() -> list[tuple[str, Any]]:
    """(pattern, handler class) pairs, in the order tornado tries them."""
    return [
        (r"/", dashboard.HomeHandler),
        *dashboard.routes(),
        *metrics.routes(),
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


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The request targets (path and query) the Application serves: `exact` paths, and every target
    that starts with one of `prefixes`.

    >>> paths = app_paths([(r"/", None), (r"/api/v(?P<v>[123])/checks/", None)])
    >>> paths.exact, paths.prefixes
    (frozenset({'/'}), ('/?', '/api/'))
    """

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def owns(self, target: str) -> bool:
        return target in self.exact or target.startswith(self.prefixes)


def app_paths(table: list[tuple[str, Any]] | None = None) -> AppPaths:
    """A pattern with no regex in it is one exact path (with or without a query); any other owns the
    whole directory its fixed start names (`/api/v(?P<version>[123])/...` owns `/api/`), so the
    Application answers every path there, a 404 included. A pattern whose fixed start names no
    directory below the root would take every ping: ValueError."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for pattern, _ in route_table() if table is None else table:
        special = _SPECIAL.search(pattern)
        if special is None:
            exact.add(pattern)
            prefixes.add(pattern + "?")
            continue
        directory = pattern[: pattern.rfind("/", 0, special.start()) + 1]
        if len(directory) < 2:
            raise ValueError(f"route {pattern!r} does not start with a fixed directory such as /api/")
        prefixes.add(directory)
    return AppPaths(frozenset(exact), tuple(sorted(prefixes)))


def make_app(ctx: Context) -> Application:
    return Application(
        [(pattern, handler, {"ctx": ctx}) for pattern, handler in route_table()],
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        compress_response=False,
        **dashboard.app_settings(ctx),
    )

"""Status badges: the URLs the badges endpoint lists, and the badges themselves (SVG, JSON, shields.io).

A badge URL carries the project's badge key (a keyed hash, not a secret key) and a tag, a check's
unique key, or "*" for the whole project.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from tornado.web import RequestHandler

from hcserver.context import Context
from hcserver.domain.projects import Project
from hcserver.views import badge_status, badge_url

_COLORS = {"up": "#4c1", "late": "#fe7d37", "down": "#e05d44"}
_FORMATS = ("svg", "json", "shields")


def project_badges(ctx: Context, project: Project) -> dict[str, dict[str, str]]:
    key = ctx.index.badge_key(project.id)
    tags = sorted({tag for c in ctx.index.project_checks(project.id) for tag in c.tag_list()})
    result = {}
    for tag in [*tags, "*"]:
        urls = {}
        for fmt in _FORMATS:
            urls[fmt] = badge_url(ctx.settings, key, tag, fmt=fmt)
            urls[fmt + "3"] = badge_url(ctx.settings, key, tag, fmt=fmt, states=3)
        result[tag] = urls
    return result


class BadgeHandler(RequestHandler):
    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    def get(self, key: str, tag: str, states: str | None, fmt: str) -> None:
        index = self.ctx.index
        project_id = index.project_by_badge_key(key)
        if project_id is None:
            self.set_status(404)
            self.finish("not found")
            return
        now = self.ctx.clock()
        checks = [
            c for c in index.project_checks(project_id)
            if tag == "*" or tag in c.tag_list() or c.unique_key == tag
        ]  # fmt: skip
        statuses = [c.status_at(now) for c in checks]
        status = badge_status(statuses, states=3 if states else 2)
        label = "all" if tag == "*" else tag
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Cache-Control", "no-cache")
        if fmt == "svg":
            self.set_header("Content-Type", "image/svg+xml")
            self.finish(_svg(label, status))
        elif fmt == "json":
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status, "total": len(checks), "grace": statuses.count("grace"),
                                    "down": statuses.count("down")}))  # fmt: skip
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"schemaVersion": 1, "label": label, "message": status,
                                    "color": _COLORS[status].lstrip("#")}))  # fmt: skip


def _svg(label: str, status: str) -> str:
    left, right = 7 * len(label) + 12, 7 * len(status) + 12
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label)}: {status}"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{_COLORS[status]}"/>'
        f'<g fill="#fff" font-family="Verdana,sans-serif" font-size="11">'
        f'<text x="6" y="14">{escape(label)}</text><text x="{left + 6}" y="14">{status}</text></g></svg>'
    )


def routes() -> list[tuple[str, Any]]:
    return [(r"/badge/(?P<key>[0-9a-f]{16})/(?P<tag>[^/]+?)(?P<states>-3)?\.(?P<fmt>svg|json|shields)",
             BadgeHandler)]  # fmt: skip

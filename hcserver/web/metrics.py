"""Prometheus metrics: a project's checks, as the reference serves them, and the server's own.

    GET /projects/<project-uuid>/metrics/<read-only key>
    GET /projects/<project-uuid>/metrics/          Authorization: Bearer <read-only key>
    GET /metrics                                   Authorization: Bearer <HC_ADMIN_KEY or HC_METRICS_KEY>

A project's metrics are the reference's, byte for byte: the same families, help lines, label order
and escaping, and its answers to a bad key: 401 without a bearer token, 400 for a key that is not 32
characters, 403 for any key that is not a project's read-only key (the read-write key included).
As in the reference, the key chooses the project; the uuid in the path only has to be one.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from tornado.web import RequestHandler

from hcserver.context import Context
from hcserver.domain.checks import DOWN, GRACE, PAUSED, Check
from hcserver.domain.projects import API_KEY_LENGTH
from hcserver.metrics import ServerMetrics, escape_label

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Django's <slug:> converter, which the reference's key segment uses.
_KEY = r"(?P<key>[-a-zA-Z0-9_]+)"


def routes() -> list[tuple[str, type[RequestHandler]]]:
    return [
        (r"/projects/" + _UUID + r"/metrics/" + _KEY, ProjectMetricsHandler),
        (r"/projects/" + _UUID + r"/checks/metrics/" + _KEY, ProjectMetricsHandler),
        (r"/projects/" + _UUID + r"/metrics/", ProjectMetricsHandler),
        (r"/metrics", ServerMetricsHandler),
    ]


def project_metrics(checks: list[Check], now: float) -> str:
    """The reference's text for a project's checks (in the order they were made)."""
    rows = []
    for check in checks:
        name, tags = escape_label(check.name), escape_label(check.tags)
        labels = f'{{name="{name}", tags="{tags}", unique_key="{check.unique_key}"}}'
        rows.append((labels, check.status_at(now), 1 if check.started else 0))
    out: list[str] = []
    out += _family("hc_check_up", "Whether the check is currently up (1 for yes, 0 for no).")
    out += (f"hc_check_up{labels} {0 if status == DOWN else 1}\n" for labels, status, _ in rows)
    out.append("\n")
    out += _family("hc_check_started", "Whether the check is currently started (1 for yes, 0 for no).")
    out += (f"hc_check_started{labels} {started}\n" for labels, _, started in rows)
    out.append("\n")
    out += _family("hc_check_grace", "Whether the check is currently in the grace period (1 for yes, 0 for no).")
    out += (f"hc_check_grace{labels} {1 if status == GRACE else 0}\n" for labels, status, _ in rows)
    out.append("\n")
    out += _family("hc_check_paused", "Whether the check is currently paused (1 for yes, 0 for no).")
    out += (f"hc_check_paused{labels} {1 if status == PAUSED else 0}\n" for labels, status, _ in rows)
    all_tags: set[str] = set()
    down_tags: set[str] = set()
    down = 0
    for check, (_, status, _) in zip(checks, rows, strict=True):
        tag_list = check.tag_list()
        all_tags.update(tag_list)
        if status == DOWN:
            down += 1
            down_tags.update(tag_list)
    out.append("\n")
    out += _family("hc_tag_up", "Whether all checks with this tag are up (1 for yes, 0 for no).")
    out += (f'hc_tag_up{{tag="{escape_label(tag)}"}} {0 if tag in down_tags else 1}\n' for tag in sorted(all_tags))
    out.append("\n")
    out += _family("hc_checks_total", "The total number of checks.")
    out.append(f"hc_checks_total {len(checks)}\n")
    out.append("\n")
    out += _family("hc_checks_down_total", "The number of checks currently down.")
    out.append(f"hc_checks_down_total {down}\n")
    return "".join(out)


def _family(name: str, help_text: str) -> Iterable[str]:
    return (f"# HELP {name} {help_text}\n", f"# TYPE {name} gauge\n")


class ProjectMetricsHandler(RequestHandler):
    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    def get(self, key: str | None = None) -> None:
        if key is None:
            # Without a key in the URL, expect it as a bearer token (the prefix exactly, as the reference).
            header = self.request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                self._empty(401)
                return
            key = header.removeprefix("Bearer ")
        if len(key) != API_KEY_LENGTH:
            self._empty(400)
            return
        found = self.ctx.index.project_by_api_key(key)
        if found is None or not found[1]:
            self._empty(403)
            return
        project = found[0]
        checks = sorted(self.ctx.index.project_checks(project.id), key=lambda c: c.created)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(project_metrics(checks, self.ctx.clock()))

    def _empty(self, status: int) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish()


class ServerMetricsHandler(RequestHandler):
    """The server's own metrics (hcserver.metrics), for the admin key or HC_METRICS_KEY as a bearer
    token; 404 when neither is set, so an unconfigured server shows nothing at all."""

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    def get(self) -> None:
        settings = self.ctx.settings
        keys = [k for k in (settings.admin_key, settings.metrics_key) if k]
        metrics = self.settings.get("metrics")
        if not keys or not isinstance(metrics, ServerMetrics):
            self.set_status(404)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("not found")
            return
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        given = token.strip().encode("utf-8", "replace") if scheme.lower() == "bearer" else b""
        if not given or not any(hmac.compare_digest(k.encode(), given) for k in keys):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="hcserver metrics"')
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("missing or wrong bearer token (HC_METRICS_KEY or HC_ADMIN_KEY)")
            return
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(metrics.render())

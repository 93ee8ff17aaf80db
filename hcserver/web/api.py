"""Management API (v1, v2, v3), the projects admin API, badges and the status endpoint.

Handlers translate: authorize, parse, call one use case in `hcserver.services`, serialize.
Domain errors are rendered in one place, `ApiHandler.write_error`, as {"error": "..."}.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

from hcserver import services
from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.errors import DomainError, Forbidden, Invalid, NotFound, Unauthorized
from hcserver.domain.projects import API_KEY_LENGTH, Project
from hcserver.specs import parse_check_spec
from hcserver.views import check_to_json, flip_to_json, ping_to_json
from hcserver.web import badges as badge_module
from hcserver.web.tornado_internals import reason

log = logging.getLogger("hcserver.api")

V = r"/api/v(?P<version>[123])"
UUID = r"(?P<code>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
UUID_OR_KEY = r"(?P<code>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{40})"
# Checks serialized per piece of a streamed listing: ~2 ms of work at ~10 us a check.
LISTING_PIECE = 200


class ApiHandler(RequestHandler):
    """Base: CORS, JSON errors, key checks, and the request body as a JSON object."""

    ctx: Context

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx
        self.version = 3
        self.readonly = False
        self._json: dict[str, Any] | None = None

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Headers", "X-Api-Key, Content-Type")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Cache-Control", "no-cache")

    def prepare(self) -> None:
        version = self.path_kwargs.get("version")
        if version:
            self.version = int(version)

    def options(self, *args: str, **kwargs: str) -> None:
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DomainError):
            self.set_status(exc.status)
            message = exc.message
        else:
            message = reason(self).lower()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, DomainError):
            super().log_exception(typ, value, tb)

    # -- helpers ----------------------------------------------------------------------------------

    def body_json(self) -> dict[str, Any]:
        if self._json is None:
            raw = self.request.body
            if not raw:
                self._json = {}
            else:
                try:
                    value = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise Invalid("could not parse request body") from None
                if not isinstance(value, dict):
                    raise Invalid("json validation error: value is not an object")
                self._json = value
        return self._json

    def authorize(self, write: bool) -> Project:
        """The project of the API key: header X-Api-Key, or for POST an api_key field in the body."""
        key: Any = self.request.headers.get("X-Api-Key", "")
        if self.request.method == "POST":
            # The body is parsed even when the header carries the key: bad JSON is a 400 first.
            body = self.body_json()
            key = key or body.get("api_key", "")
        if not isinstance(key, str) or len(key) != API_KEY_LENGTH:
            raise Unauthorized("missing api key")
        found = self.ctx.index.project_by_api_key(key)
        if found is None or (write and found[1]):
            raise Unauthorized("wrong api key")
        project, self.readonly = found
        return project

    def check_of(self, project: Project, code: str) -> Check:
        index = self.ctx.index
        check = index.checks.get(code) if len(code) == 36 else index.by_unique_key(code)
        if check is None:
            raise NotFound("not found")
        if check.project_id != project.id:
            raise Forbidden("wrong project")
        return check

    def check_json(self, check: Check) -> dict[str, Any]:
        ctx = self.ctx
        return check_to_json(
            check,
            now=ctx.clock(),
            settings=ctx.settings,
            version=self.version,
            readonly=self.readonly,
            badge_key=ctx.index.badge_key(check.project_id),
        )

    def send(self, payload: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class ChecksHandler(ApiHandler):
    async def get(self, version: str) -> None:
        """The project's checks, in creation order, as json.dumps({"checks": [...]}) would write them.

        Past one piece of LISTING_PIECE checks the answer is streamed: a piece is serialized and
        sent, then the loop serves what waits (pings) before the next. Built at once, a listing of
        200,000 checks (199 MB) held every ping back for 7 s.
        """
        project = self.authorize(write=False)
        tags = set(self.get_arguments("tag"))
        slug = self.get_argument("slug", "")
        ctx = self.ctx
        now = ctx.clock()
        badge_key = ctx.index.badge_key(project.id)

        def serialized(checks: list[Check]) -> list[str]:
            return [
                json.dumps(
                    check_to_json(
                        check,
                        now=now,
                        settings=ctx.settings,
                        version=self.version,
                        readonly=self.readonly,
                        badge_key=badge_key,
                    )
                )
                for check in checks
                if (not slug or check.slug == slug) and (not tags or tags.issubset(check.tag_list()))
            ]

        checks = list(ctx.index.project_checks(project.id))
        self.set_header("Content-Type", "application/json")
        if len(checks) <= LISTING_PIECE:
            self.finish('{"checks": [' + ", ".join(serialized(checks)) + "]}")
            return
        self.write('{"checks": [')
        separator = ""
        try:
            for start in range(0, len(checks), LISTING_PIECE):
                pieces = serialized(checks[start : start + LISTING_PIECE])
                if pieces:
                    self.write(separator + ", ".join(pieces))
                    separator = ", "
                await self.flush()
                await asyncio.sleep(0)  # a flush the socket took at once does not yield
            self.finish("]}")
        except StreamClosedError:
            pass  # the client went away; nothing left to answer

    async def post(self, version: str) -> None:
        project = self.authorize(write=True)
        spec = parse_check_spec(self.body_json())
        check, created = await services.create_check(self.ctx, project.id, spec, version=self.version)
        self.send(self.check_json(check), 201 if created else 200)


class CheckHandler(ApiHandler):
    def get(self, version: str, code: str) -> None:
        project = self.authorize(write=False)
        self.send(self.check_json(self.check_of(project, code)))

    async def post(self, version: str, code: str) -> None:
        project = self.authorize(write=True)
        if len(code) != 36:
            raise NotFound()
        check = self.check_of(project, code)
        spec = parse_check_spec(self.body_json())
        await services.update_check(self.ctx, check, spec, version=self.version)
        self.send(self.check_json(check))

    async def delete(self, version: str, code: str) -> None:
        project = self.authorize(write=True)
        if len(code) != 36:
            raise NotFound()
        check = self.check_of(project, code)
        payload = self.check_json(check)
        await services.delete_check(self.ctx, check)
        self.send(payload)


class PauseHandler(ApiHandler):
    async def post(self, version: str, code: str, action: str) -> None:
        project = self.authorize(write=True)
        check = self.check_of(project, code)
        if action == "pause":
            await services.pause(self.ctx, check)
        else:
            await services.resume(self.ctx, check)
        self.send(self.check_json(check))


class PingsHandler(ApiHandler):
    async def get(self, version: str, code: str) -> None:
        project = self.authorize(write=True)
        check = self.check_of(project, code)
        ctx = self.ctx
        pings = await ctx.recorder.recent_pings(check, ctx.settings.ping_log_limit)
        self.send({"pings": [ping_to_json(p, check=check, settings=ctx.settings, version=self.version) for p in pings]})


class PingBodyHandler(ApiHandler):
    async def get(self, version: str, code: str, n: str) -> None:
        project = self.authorize(write=True)
        check = self.check_of(project, code)
        ping = await self.ctx.recorder.get_ping(check, int(n)) if len(n) < 19 else None
        if ping is None or not ping.body:
            raise NotFound("not found")
        self.set_header("Content-Type", "text/plain")
        self.finish(ping.body)


class FlipsHandler(ApiHandler):
    async def get(self, version: str, code: str) -> None:
        project = self.authorize(write=False)
        check = self.check_of(project, code)
        now = self.ctx.clock()
        low, high = _flip_window(self, now)
        flips = await self.ctx.recorder.flips(check)
        chosen = [f for f in flips if f.new_status in ("up", "down") and low <= f.created and f.created < high]
        # Newest first, as the reference lists them.
        self.send({"flips": [flip_to_json(f) for f in reversed(chosen)]})


# The reference's bounds: seconds up to a year, start/end up to 10^10 (year 2286).
_FLIP_LIMITS = {"seconds": 31536000, "start": 10**10, "end": 10**10}


def _flip_window(handler: RequestHandler, now: float) -> tuple[float, float]:
    """?seconds= / ?start= / ?end= as whole numbers (UNIX times for start and end); all that are given apply.

    As in the reference, `seconds=0` sets no bound.
    """
    values: dict[str, int] = {}
    for name, limit in _FLIP_LIMITS.items():
        raw = handler.get_argument(name, None)
        if raw is None:
            continue
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 11 or int(raw) > limit:
            raise Invalid(f"invalid query: {name} must be a whole number from 0 to {limit}")
        values[name] = int(raw)
    low = float(values.get("start", 0))
    if values.get("seconds"):
        low = max(low, now - values["seconds"])
    return low, float(values.get("end", 2**62))


class BadgesHandler(ApiHandler):
    def get(self, version: str) -> None:
        project = self.authorize(write=False)
        self.send({"badges": badge_module.project_badges(self.ctx, project)})


class StatusHandler(ApiHandler):
    """`OK` or the problem, for anyone; with ?verbose=1 and the admin key, the details as JSON.

    The peer's address grants nothing: behind a reverse proxy on the same host every client is
    a loopback peer. Without the key, ?verbose=1 gets the plain answer.
    """

    def get(self, version: str) -> None:
        problem = self.ctx.health()
        if self.get_argument("verbose", "") == "1" and self._admin():
            details: dict[str, Any] = {"ok": problem is None, "error": problem or ""}
            details.update(self.ctx.recorder.status())
            details["checks"] = len(self.ctx.index.checks)
            details["projects"] = len(self.ctx.index.projects)
            connections = self.settings.get("connections")
            if connections is not None:
                details["connections"] = connections.as_json()
            self.send(details, 200 if problem is None else 503)
            return
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        if problem is not None:
            self.set_status(503)
            self.finish(problem)
        else:
            self.finish("OK")

    def _admin(self) -> bool:
        """The admin key in X-Api-Key or as `Authorization: Bearer <key>`."""
        admin = self.ctx.settings.admin_key
        if not admin:
            return False
        headers = self.request.headers
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        given = [headers.get("X-Api-Key", ""), token.strip() if scheme.lower() == "bearer" else ""]
        expected = admin.encode()
        return any(hmac.compare_digest(expected, key.encode("utf-8", "replace")) for key in given if key)


class AdminHandler(ApiHandler):
    """Projects, for operators running several teams on one server (enabled by HC_ADMIN_KEY)."""

    def admin(self) -> None:
        admin = self.ctx.settings.admin_key
        if not admin:
            raise Forbidden("the projects API is disabled (set HC_ADMIN_KEY)")
        given = self.request.headers.get("X-Api-Key", "")
        if not hmac.compare_digest(admin.encode(), given.encode("utf-8", "replace")):
            raise Unauthorized("wrong api key")


class ProjectsHandler(AdminHandler):
    def get(self, version: str) -> None:
        self.admin()
        projects = [_project_json(self.ctx, p) for p in self.ctx.index.projects.values()]
        self.send({"projects": projects})

    async def post(self, version: str) -> None:
        self.admin()
        body = self.body_json()
        name = body.get("name", "")
        if not isinstance(name, str):
            raise Invalid("json validation error: name is not a string")
        if len(name) > 100:
            raise Invalid("json validation error: name is too long")
        project, keys = await services.create_project(self.ctx, name)
        payload = _project_json(self.ctx, project)
        payload.update(api_key=keys.api_key, api_key_readonly=keys.api_key_readonly, ping_key=keys.ping_key)
        self.send(payload, 201)


class ProjectHandler(AdminHandler):
    async def delete(self, version: str, project_id: str) -> None:
        self.admin()
        ctx = self.ctx
        project = ctx.index.projects.get(project_id)
        if project is None:
            raise NotFound("not found")
        payload = _project_json(ctx, project)
        await services.delete_project(ctx, project)
        self.send(payload)


def _project_json(ctx: Context, project: Project) -> dict[str, Any]:
    count = sum(1 for _ in ctx.index.project_checks(project.id))
    return {"id": project.id, "name": project.name, "n_checks": count}


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        raise NotFound("not found")

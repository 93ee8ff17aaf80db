"""The dashboard: server-rendered pages for people, beside the API for programs.

Handlers translate, as the API's do: they read the session and the form, call one use case in
`hcserver.services` (with the API's own validation, `parse_check_spec` and the channel parsers, so
a form gets exactly the API's rules and messages), and render a template (templates/, autoescaped:
a name or a body holding markup is shown as text).

Sessions are a signed cookie naming the project and the role (read-write, read-only, or admin);
its secret is derived from the store's secret, so sessions survive a restart. Every POST carries
Tornado's XSRF token (`xsrf_form_html()`); one without it is refused with 403.

Paths (web/routes.py hands them to the Application; see `routes()` for why they are not pings):

    GET  /                  sign-in form, or the checks page; API clients get the old text answer
    POST /signin, /signout  the session
    GET  /events            the checks page's live updates (server-sent events, dashboard_live.py)
    GET|POST /checks/...    a check's page, its edit form, pause, resume, delete; POST /checks/ adds one
    GET|POST /channels/...  channels: list, add, edit, delete, send a test notification
    GET|POST /projects/     the admin key's project picker
    GET  /static/...        the stylesheet and script
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tornado import template
from tornado.iostream import StreamClosedError
from tornado.web import Finish, HTTPError, RequestHandler, StaticFileHandler, create_signed_value, decode_signed_value

from hcserver import services
from hcserver.alerts.channels import APPRISE, EMAIL, KINDS, METHODS, WEBHOOK, Channel
from hcserver.alerts.templates import AlertContext
from hcserver.alerts.transports import deliver
from hcserver.context import Context
from hcserver.domain.checks import DOWN, Check
from hcserver.domain.errors import DomainError, Invalid
from hcserver.domain.projects import API_KEY_LENGTH, Project
from hcserver.domain.schedules import CRON, SIMPLE
from hcserver.specs import parse_check_spec
from hcserver.web import dashboard_words as words
from hcserver.web.dashboard_live import Hub, Subscription, key_of
from hcserver.web.ping import TrustedProxies, forwarded_scheme
from hcserver.web.tornado_internals import reason

PACKAGE = Path(__file__).parent
TEMPLATE_DIR = PACKAGE / "templates"
STATIC_DIR = PACKAGE / "static"

SESSION_COOKIE = "hc_session"
SESSION_DAYS = 30
# Label of the HMAC that turns the store's secret (which hashes the API keys) into the cookie
# secret: the same store gives the same cookie secret after a restart, and a cookie signature
# reveals nothing about the key-hashing secret.
_COOKIE_SECRET_LABEL = b"hcserver dashboard session cookies v1"
# Scripts, styles and connections only from this server; no framing; forms post only here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# How often an event stream wakes to see whether the server is stopping, and how many wakes make
# a keep-alive comment (so proxies and browsers do not time an idle stream out).
_STREAM_WAKE_S = 0.5
_HEARTBEAT_WAKES = 30
# Pings shown on a check's page (the API's log limit is the most that is kept).
_FLIPS_SHOWN = 50

_loader = template.Loader(str(TEMPLATE_DIR))


def cookie_secret(ctx: Context) -> bytes:
    return hmac.digest(ctx.index.hasher.secret, _COOKIE_SECRET_LABEL, "sha256")


def app_settings(ctx: Context) -> dict[str, Any]:
    """What the Application needs for the dashboard: the live-update hub, and the XSRF cookie's flags."""
    return {
        "dashboard_hub": Hub(ctx, render_row),
        "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Lax"},
    }


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in: a project with a read-write or read-only key, or the admin (who picks a
    project: until then `project_id` is "")."""

    project_id: str
    readonly: bool
    admin: bool = False


# -- rows of the checks page -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    href: str
    status: str
    icon: str
    name: str
    slug: str
    tags: list[str]
    schedule: str
    last_ping: float | None
    ago: str
    exact: str
    search: str
    hidden: bool = False


def make_row(check: Check, now: float, readonly: bool, hidden: bool = False) -> Row:
    status = words.display_status(check, now)
    key = key_of(check, readonly)
    return Row(
        key=key,
        href=f"/checks/{key}",
        status=status,
        icon=words.STATUS_ICONS.get(status, ""),
        name=check.name,
        slug=check.slug,
        tags=check.tag_list(),
        schedule=words.schedule_words(check),
        last_ping=check.last_ping,
        ago=words.ago(check.last_ping, now),
        exact=words.exact_time(check.last_ping),
        search=f"{check.name} {check.slug} {check.tags}".lower(),
        hidden=hidden,
    )


def render_row(check: Check, readonly: bool, now: float) -> str:
    """One row of the checks page, as the page itself renders it (for live updates)."""
    return _loader.load("row.html").generate(row=make_row(check, now, readonly)).decode()


def matches(check: Check, tags: list[str], text: str) -> bool:
    """The page's filter: every tag asked for (as the API's ?tag=), and the text in name, slug or tags."""
    if tags and not set(tags).issubset(check.tag_list()):
        return False
    return not text or text in f"{check.name} {check.slug} {check.tags}".lower()


# -- handlers ----------------------------------------------------------------------------------------


class DashboardHandler(RequestHandler):
    """Base: session, XSRF on every POST, templates, security headers, HTML errors."""

    ctx: Context

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx
        self._session: Session | None = None
        self._session_read = False

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        if self.request.method == "POST":
            self.check_xsrf_cookie()

    def create_template_loader(self, template_path: str) -> template.BaseLoader:
        return _loader

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        session = self.session
        project = self.ctx.index.projects.get(session.project_id) if session else None
        namespace.update(session=session, project=project, words=words, server_now=self.ctx.clock())
        return namespace

    def static_url(self, path: str, include_host: bool | None = None, **kwargs: Any) -> str:
        return StaticFileHandler.make_static_url({"static_path": str(STATIC_DIR)}, path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = reason(self)
        if isinstance(exc, HTTPError) and exc.log_message and status_code == 403:
            message = "Forbidden: " + (exc.log_message % exc.args if exc.args else exc.log_message)
        elif isinstance(exc, DomainError):
            self.set_status(exc.status)
            message = exc.message
        self.render("error.html", status=self.get_status(), message=message)

    # -- the session --------------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        if not self._session_read:
            self._session_read = True
            self._session = self._read_session()
        return self._session

    def _read_session(self) -> Session | None:
        raw = self.get_cookie(SESSION_COOKIE)
        if not raw:
            return None
        value = decode_signed_value(cookie_secret(self.ctx), SESSION_COOKIE, raw, max_age_days=SESSION_DAYS)
        if value is None:
            return None
        try:
            data = json.loads(value)
            project_id, readonly, admin = str(data["p"]), bool(data["ro"]), str(data.get("a", ""))
        except (ValueError, KeyError, TypeError):
            return None
        if admin:
            # The admin's session ends when HC_ADMIN_KEY changes or is unset.
            if admin != self._admin_tag():
                return None
            if project_id and project_id not in self.ctx.index.projects:
                project_id = ""
            return Session(project_id, False, admin=True)
        if project_id not in self.ctx.index.projects:
            return None  # the project was deleted
        return Session(project_id, readonly)

    def _admin_tag(self) -> str:
        admin = self.ctx.settings.admin_key
        if not admin:
            return "-"
        return hmac.new(cookie_secret(self.ctx), admin.encode(), hashlib.sha256).hexdigest()[:32]

    def start_session(self, session: Session) -> None:
        data = {"p": session.project_id, "ro": session.readonly}
        if session.admin:
            data["a"] = self._admin_tag()
        value = create_signed_value(cookie_secret(self.ctx), SESSION_COOKIE, json.dumps(data))
        self.set_cookie(
            SESSION_COOKIE,
            value.decode(),
            expires_days=SESSION_DAYS,
            httponly=True,
            samesite="Lax",
            secure=self.is_https(),
        )
        self._session, self._session_read = session, True

    def is_https(self) -> bool:
        """The browser's connection is HTTPS: ours, or a trusted proxy's (X-Forwarded-Proto), as pings read it."""
        request = self.request
        forwarded = request.headers.get("X-Forwarded-Proto", "")
        if forwarded and TrustedProxies(self.ctx.settings.trusted_proxies).trusts(request.remote_ip or ""):
            return forwarded_scheme(forwarded, request.protocol) == "https"
        return request.protocol == "https"

    def end_session(self) -> None:
        self.clear_cookie(SESSION_COOKIE)
        self._session, self._session_read = None, True

    def signed_in(self, write: bool = False) -> tuple[Session, Project]:
        """The session and its project; without one: a GET goes to the sign-in form, a POST gets 403.
        `write`: a read-only session gets 403."""
        session = self.session
        project = self.ctx.index.projects.get(session.project_id) if session else None
        if session is None or project is None:
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/projects/" if session is not None and session.admin else "/")
                raise Finish
            raise HTTPError(403, "sign in first")
        if write and session.readonly:
            raise HTTPError(403, "this session has a read-only key")
        return session, project

    def check_of(self, project: Project, code: str) -> Check:
        index = self.ctx.index
        check = index.checks.get(code) if len(code) == 36 else index.by_unique_key(code)
        if check is None or check.project_id != project.id:
            raise HTTPError(404)
        return check

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, DomainError):
            super().log_exception(typ, value, tb)


def wants_page(handler: RequestHandler) -> bool:
    """A browser asks for HTML; API clients (curl, libraries) send `*/*` or nothing."""
    return "text/html" in handler.request.headers.get("Accept", "")


ROOT_TEXT = "hcserver: Healthchecks-compatible ping server. API: /api/v3/, status: /api/v3/status/\n"


class HomeHandler(DashboardHandler):
    """`/`: the checks page when signed in, else the sign-in form; the plain text for API clients."""

    def set_default_headers(self) -> None:
        pass  # set per answer: the text answer keeps the API's headers

    def get(self) -> None:
        if not wants_page(self):
            self.set_header("Access-Control-Allow-Origin", "*")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(ROOT_TEXT)
            return
        DashboardHandler.set_default_headers(self)
        session = self.session
        if session is None:
            self.render("signin.html", error="")
            return
        if not session.project_id:
            self.redirect("/projects/")
            return
        self.checks_page(*self.signed_in())

    def checks_page(self, session: Session, project: Project) -> None:
        ctx = self.ctx
        now = ctx.clock()
        tags = [t for t in self.get_arguments("tag") if t]
        text = self.get_argument("q", "").strip().lower()
        checks = list(ctx.index.project_checks(project.id))
        hub: Hub = self.application.settings["dashboard_hub"]
        sub = hub.subscribe(project.id, session.readonly, checks, now)
        rows = [make_row(c, now, session.readonly, hidden=not matches(c, tags, text)) for c in checks]
        down = sum(1 for r in rows if r.status == DOWN)
        all_tags = sorted({t for c in checks for t in c.tag_list()})
        self.render(
            "checks.html", rows=rows, down=down, tags=tags, text=text, all_tags=all_tags, token=sub.token, now=now
        )


class SignInHandler(DashboardHandler):
    def post(self) -> None:
        key = self.get_body_argument("api_key", "").strip()
        admin = self.ctx.settings.admin_key
        if admin and hmac.compare_digest(admin.encode(), key.encode("utf-8", "replace")):
            self.start_session(Session("", False, admin=True))
            self.redirect("/projects/", status=303)
            return
        found = self.ctx.index.project_by_api_key(key) if len(key) == API_KEY_LENGTH else None
        if found is None:
            # One message for every wrong key: no hint which part was wrong.
            self.set_status(403)
            self.render("signin.html", error="That key does not sign in here.")
            return
        project, readonly = found
        self.start_session(Session(project.id, readonly))
        self.redirect("/", status=303)


class SignOutHandler(DashboardHandler):
    def post(self) -> None:
        self.end_session()
        self.redirect("/", status=303)


class ProjectsPage(DashboardHandler):
    """The admin key's project picker."""

    def admin_session(self) -> Session:
        session = self.session
        if session is None or not session.admin:
            raise HTTPError(403, "the admin key signs in to the project picker")
        return session

    def get(self) -> None:
        if self.session is None:
            self.redirect("/")
            return
        self.admin_session()
        index = self.ctx.index
        projects = [(p, index.check_count(p.id)) for p in index.projects.values()]
        self.render("projects.html", projects=projects)

    def post(self) -> None:
        self.admin_session()
        project_id = self.get_body_argument("project", "")
        if project_id not in self.ctx.index.projects:
            raise HTTPError(404)
        self.start_session(Session(project_id, False, admin=True))
        self.redirect("/", status=303)


class EventsHandler(DashboardHandler):
    """The checks page's live updates: server-sent events fed by the hub (dashboard_live.py)."""

    def initialize(self, ctx: Context) -> None:
        super().initialize(ctx)
        self.closed = False
        self.writing: asyncio.Future[None] | None = None

    def on_connection_close(self) -> None:
        self.closed = True

    async def get(self) -> None:
        session, project = self.signed_in()
        hub: Hub = self.application.settings["dashboard_hub"]
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
        sub = hub.attach(self.get_argument("token", ""), project.id, session.readonly, self)
        if sub is None:
            # A token this server does not know (it restarted, or the page was gone too long).
            self.finish("event: reload\ndata: {}\n\n")
            return
        try:
            await self._serve(sub)
        finally:
            hub.detach(sub, self)

    async def _serve(self, sub: Subscription) -> None:
        # "retry": the browser's EventSource reconnects after a second when the stream breaks.
        self.write("retry: 1000\n\n")
        try:
            await self.flush()
            wakes = 0
            while not self.closed and not self._server_stopping():
                await asyncio.sleep(_STREAM_WAKE_S)
                wakes += 1
                if wakes % _HEARTBEAT_WAKES == 0 and self.writing is None:
                    self.write(": keep-alive\n\n")
                    await self.flush()
        except StreamClosedError:
            return
        if not self.closed:
            self.closed = True
            self.finish()

    def _server_stopping(self) -> bool:
        """The HTTP layer (web/http1.py) is stopping: end the stream so the stop need not wait for it.
        `server_connection` is that layer's connection; its `server` says whether it is stopping."""
        connection = self.request.server_connection
        server = getattr(connection, "server", None)
        return bool(getattr(server, "stopping", False))

    def send(self, data: str, done: Any) -> None:
        if self.closed:
            done(False)
            return
        self.write(f"data: {data}\n\n")
        future = self.flush()

        def written(f: asyncio.Future[None]) -> None:
            self.writing = None
            done(f.exception() is None and not self.closed)

        self.writing = future
        future.add_done_callback(written)


class StaticHandler(StaticFileHandler):
    """The dashboard's stylesheet and script, from the package (cached for long: URLs carry a hash)."""

    def initialize(self, ctx: Context) -> None:  # type: ignore[override]
        super().initialize(path=str(STATIC_DIR))


# -- checks ------------------------------------------------------------------------------------------


class NewCheckHandler(DashboardHandler):
    """`POST /checks/`: a check with default settings, named nothing yet; its page opens on the form."""

    async def post(self) -> None:
        _, project = self.signed_in(write=True)
        try:
            check, _ = await services.create_check(self.ctx, project.id, parse_check_spec({}), version=3)
        except DomainError as e:
            self.set_status(e.status)
            self.render("error.html", status=e.status, message=e.message)
            return
        self.redirect(f"/checks/{check.uuid}#settings", status=303)


class CheckPage(DashboardHandler):
    async def get(self, code: str) -> None:
        session, project = self.signed_in()
        check = self.check_of(project, code)
        await self.show(session, check)

    async def show(self, session: Session, check: Check, form: dict[str, Any] | None = None, error: str = "") -> None:
        ctx = self.ctx
        now = ctx.clock()
        pings = await ctx.recorder.recent_pings(check, ctx.settings.ping_log_limit)
        flips = list(reversed(await ctx.recorder.flips(check)))[:_FLIPS_SHOWN]
        channels = [c for c in ctx.index.project_channels(check.project_id) if isinstance(c, Channel)]
        key = key_of(check, session.readonly)
        ping_url = ctx.settings.ping_endpoint + check.uuid
        self.render(
            "check.html",
            check=check,
            key=key,
            status=words.display_status(check, now),
            now=now,
            pings=pings,
            flips=flips,
            channels=channels,
            ping_url=ping_url,
            slug_url=f"{ctx.settings.ping_endpoint}<ping-key>/{check.slug}" if check.slug else "",
            crontab=crontab_line(check, ping_url),
            form=form if form is not None else form_of(check),
            error=error,
            saved=self.get_argument("saved", "") == "1",
            simple=SIMPLE,
        )

    async def post(self, code: str) -> None:
        """The edit form: the same body the API would get, through the API's validation and use case."""
        session, project = self.signed_in(write=True)
        check = self.check_of(project, code)
        form: dict[str, Any] = {name: self.get_body_argument(name, "") for name in _CHECK_FIELDS}
        form["channels"] = self.get_body_arguments("channels")
        body: dict[str, Any] = {
            "name": form["name"],
            "tags": form["tags"],
            "desc": form["desc"],
            "grace": _number(form["grace"]),
            "channels": ",".join(form["channels"]),
        }
        if form["slug"] != check.slug:
            # Sent only when changed, as an API client would: a slug sent is one the user chose,
            # which a rename then keeps; an untouched slug follows the name.
            body["slug"] = form["slug"]
        if form["kind"] == SIMPLE:
            body["timeout"] = _number(form["timeout"])
        else:
            body["schedule"] = form["schedule"]
            body["tz"] = form["tz"]
        try:
            spec = parse_check_spec(body)
            await services.update_check(self.ctx, check, spec, version=3)
        except Invalid as e:
            self.set_status(400)
            await self.show(session, check, form=form, error=e.message)
            return
        self.redirect(f"/checks/{check.uuid}?saved=1", status=303)


_CHECK_FIELDS = ("name", "slug", "tags", "desc", "kind", "timeout", "grace", "schedule", "tz")


def _number(value: str) -> Any:
    """A form's number as the API would get it: an int when it is one, else the text (which the API's
    validation then refuses as "is not a number")."""
    text = value.strip()
    if text.isascii() and text.lstrip("-").isdigit():
        return int(text)
    return text


def form_of(check: Check) -> dict[str, Any]:
    return {
        "name": check.name,
        "slug": check.slug,
        "tags": check.tags,
        "desc": check.desc,
        "kind": SIMPLE if check.kind == SIMPLE else "cron",
        "timeout": str(check.timeout),
        "grace": str(check.grace),
        "schedule": check.schedule,
        "tz": check.tz,
        "channels": list(check.channels),
    }


def crontab_line(check: Check, ping_url: str) -> str:
    """A ready crontab line: signal the start, run the job, report its exit status."""
    when = " ".join(check.schedule.split()) if check.kind == CRON else "0 * * * *"
    curl = "curl -fsS -m 10 --retry 5 -o /dev/null"
    return f"{when} {curl} {ping_url}/start; /path/to/job.sh; {curl} {ping_url}/$?"


class CheckActionHandler(DashboardHandler):
    """`POST /checks/<uuid>/pause|resume|delete`."""

    async def post(self, code: str, action: str) -> None:
        _, project = self.signed_in(write=True)
        check = self.check_of(project, code)
        try:
            if action == "pause":
                await services.pause(self.ctx, check)
            elif action == "resume":
                await services.resume(self.ctx, check)
            else:
                await services.delete_check(self.ctx, check)
                self.redirect("/", status=303)
                return
        except DomainError as e:
            self.set_status(e.status)
            self.render("error.html", status=e.status, message=e.message)
            return
        self.redirect(f"/checks/{check.uuid}", status=303)


class PingBodyPage(DashboardHandler):
    """A ping's whole body, as plain text (never rendered as HTML: nosniff, and a text type)."""

    async def get(self, code: str, n: str) -> None:
        _, project = self.signed_in()
        check = self.check_of(project, code)
        ping = await self.ctx.recorder.get_ping(check, int(n)) if len(n) < 19 else None
        if ping is None or not ping.body:
            raise HTTPError(404)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(ping.body)


# -- channels ----------------------------------------------------------------------------------------

_CHANNEL_FIELDS = ("name", "kind", "email", "url", "url_down", "method_down", "body_down", "headers_down",
                   "url_up", "method_up", "body_up", "headers_up")  # fmt: skip


def channel_form(channel: Channel | None) -> dict[str, str]:
    form = dict.fromkeys(_CHANNEL_FIELDS, "")
    form.update(kind=WEBHOOK, method_down="GET", method_up="GET")
    if channel is None:
        return form
    form.update(name=channel.name, kind=channel.kind)
    for name, value in channel.spec.to_record().items():
        form[name] = "\n".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return form


def channel_body(form: dict[str, str]) -> dict[str, Any]:
    """The channels API's body for a form: the fields of the chosen kind; headers one `Name: value` a line."""
    kind = form["kind"]
    body: dict[str, Any] = {"name": form["name"], "kind": kind}
    if kind == EMAIL:
        body["email"] = form["email"]
    elif kind == APPRISE:
        body["url"] = form["url"]
    elif kind == WEBHOOK:
        for direction in ("down", "up"):
            for name in ("url", "method", "body"):
                body[f"{name}_{direction}"] = form[f"{name}_{direction}"]
            headers: dict[str, str] = {}
            for line in form[f"headers_{direction}"].splitlines():
                if line.strip():
                    name, _, value = line.partition(":")
                    headers[name.strip()] = value.strip()
            body[f"headers_{direction}"] = headers
    return body


class ChannelsPage(DashboardHandler):
    """`/channels/`: the list and the add form. Channels need the read-write key, as in the API."""

    def get(self) -> None:
        _, project = self.signed_in(write=True)
        self.show(project, channel_form(None), "")

    def show(self, project: Project, form: dict[str, str], error: str, notice: str = "") -> None:
        channels = [c for c in self.ctx.index.project_channels(project.id) if isinstance(c, Channel)]
        self.render(
            "channels.html",
            channels=channels,
            form=form,
            error=error,
            notice=notice or self.get_argument("notice", ""),
            kinds=KINDS,
            methods=METHODS,
        )

    async def post(self) -> None:
        _, project = self.signed_in(write=True)
        form = {name: self.get_body_argument(name, "") for name in _CHANNEL_FIELDS}
        try:
            await services.create_channel(self.ctx, project.id, channel_body(form))
        except Invalid as e:
            self.set_status(400)
            self.show(project, form, e.message)
            return
        self.redirect("/channels/?" + urlencode({"notice": "Channel added."}), status=303)


class ChannelPage(DashboardHandler):
    def channel_of(self, project: Project, channel_id: str) -> Channel:
        channel = self.ctx.index.channels.get(channel_id)
        if not isinstance(channel, Channel) or channel.project_id != project.id:
            raise HTTPError(404)
        return channel

    def get(self, channel_id: str) -> None:
        _, project = self.signed_in(write=True)
        channel = self.channel_of(project, channel_id)
        self.render("channel.html", channel=channel, form=channel_form(channel), error="", kinds=KINDS, methods=METHODS)

    async def post(self, channel_id: str) -> None:
        _, project = self.signed_in(write=True)
        channel = self.channel_of(project, channel_id)
        form = {name: self.get_body_argument(name, "") for name in _CHANNEL_FIELDS}
        try:
            await services.update_channel(self.ctx, channel, channel_body(form))
        except Invalid as e:
            self.set_status(400)
            self.render("channel.html", channel=channel, form=form, error=e.message, kinds=KINDS, methods=METHODS)
            return
        self.redirect("/channels/?" + urlencode({"notice": "Channel saved."}), status=303)


class ChannelActionHandler(ChannelPage):
    """`POST /channels/<id>/delete|test`."""

    async def post(self, channel_id: str, action: str) -> None:  # type: ignore[override]
        _, project = self.signed_in(write=True)
        channel = self.channel_of(project, channel_id)
        if action == "delete":
            await services.delete_channel(self.ctx, channel)
            self.redirect("/channels/?" + urlencode({"notice": "Channel deleted."}), status=303)
            return
        result = await send_test(self.ctx, channel, project)
        notice = "Test notification sent." if result.ok else f"The test notification failed: {result.error}"
        self.redirect("/channels/?" + urlencode({"notice": notice}), status=303)


async def send_test(ctx: Context, channel: Channel, project: Project) -> Any:
    """Deliver a made-up "down" alert through the channel now, and keep the outcome on the channel
    (its last delivery and error), as a real alert's is kept."""
    now = ctx.clock()
    alert = AlertContext(
        code="00000000-0000-0000-0000-000000000000",
        name="Test notification",
        slug="test-notification",
        tags="",
        status="down",
        now=now,
        check_json={"name": "Test notification", "status": "down"},
        body=b"This is a test notification sent from the hcserver dashboard.",
        exitstatus=None,
        project_name=project.name,
        last_ping=None,
    )
    result = await deliver(channel, alert, services.alert_settings(ctx))
    channel.record_delivery(result, now)
    await services.settle(ctx.channel_changed(channel.to_record()))
    return result


# -- the route table's part --------------------------------------------------------------------------

_UUID_OR_KEY = r"(?P<code>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{40})"


def routes() -> list[tuple[str, type[RequestHandler]]]:
    """The dashboard's paths. Every path the route table owns stops being a ping path, and a ping at
    the root is `/<uuid>` or `/<ping-key>/<slug>`, whose first segment is 36 or 22 characters
    (ping keys are 22 random characters of a-z0-9: domain/projects.py). So the dashboard's first
    segments are short words that neither can be: `checks` (6), `channels` (8), `projects` (8),
    `static` (6), and the exact paths `/signin`, `/signout` and `/events`."""
    return [
        (r"/signin", SignInHandler),
        (r"/signout", SignOutHandler),
        (r"/events", EventsHandler),
        (r"/projects/", ProjectsPage),
        (r"/checks/", NewCheckHandler),
        (r"/checks/" + _UUID_OR_KEY, CheckPage),
        (r"/checks/" + _UUID_OR_KEY + r"/(?P<action>pause|resume|delete)", CheckActionHandler),
        (r"/checks/" + _UUID_OR_KEY + r"/pings/(?P<n>[0-9]+)/body", PingBodyPage),
        (r"/channels/", ChannelsPage),
        (r"/channels/(?P<channel_id>[0-9a-f-]{36})", ChannelPage),
        (r"/channels/(?P<channel_id>[0-9a-f-]{36})/(?P<action>delete|test)", ChannelActionHandler),
        (r"/static/(?P<path>[A-Za-z0-9_.-]+)", StaticHandler),
    ]

"""Live updates of the checks page: the server's own change notifications, coalesced, sent by SSE.

A checks page, when rendered, opens a `Subscription` (`hub.subscribe(...)`) and names its token in
the page; the page's EventSource then claims it at `/events?token=...`. From the moment the page
was rendered, every change the context reports for a check of that project is noted in the
subscription, so nothing is lost between the render and the stream, nor while the EventSource
reconnects (it asks for the same URL again). A token the hub no longer knows (after a restart, or
a stream gone longer than `KEEP_S`) is answered `event: reload`, and the page reloads itself.

Cost on the ping path: the hub is in `ctx.observers` only while some page is subscribed, so with
no dashboard open a ping does not call it at all. With dashboards open, a change costs a dict
lookup and one set insertion, however many pages show the project (the pass hands the project's
changes to each of them); the work of turning changes
into messages runs at most every `INTERVAL_S`, once per check for all the streams that show it,
and the interval grows when that work takes more than a small share of the loop.

A message (one SSE `data:` line of JSON):

    {"now": <server time>, "rows": {key: [status, last_ping or null]},
     "html": {key: "<tr ...>...</tr>"}, "gone": [key, ...]}

`rows` carries what a ping changes; `html` a whole row, for a check that is new to the page or
whose name, tags or schedule changed; `gone` the checks deleted. `key` is the check's uuid, or its
unique key for a read-only session (which is never shown a uuid).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip
from hcserver.web.dashboard_words import display_status

# Changes are sent at most this often per stream (and all streams are served in the same pass).
INTERVAL_S = 0.2
# Ceiling of the interval when building messages is slow (a flood of pings on many checks).
MAX_INTERVAL_S = 1.0
# The interval is at least this many times what the last pass took: the pass stays under ~5 % of
# the event loop however many checks change.
LOAD_FACTOR = 20
# How often statuses that change with time alone (up -> grace -> down without any ping) are looked
# at, and subscriptions without a stream are expired.
SWEEP_S = 5.0
# Subscriptions without a stream kept at most (pages fetched without their script, by curl or a
# crawler): past it the oldest is forgotten (its page, should it connect late, reloads).
MAX_WAITING = 64
# A subscription with no stream is kept this long (a page loading its script, an EventSource
# reconnecting), then forgotten.
KEEP_S = 60.0


class Stream(Protocol):
    """What the hub needs of an open event stream (EventsHandler in web/dashboard.py)."""

    def send(self, data: str, done: Callable[[bool], None]) -> None:
        """Write one SSE message; `done(ok)` once written (False: the stream is gone)."""


# A row's fields that only a change of the check's settings moves: when they differ from what the
# page shows, the whole row is sent again.
def signature(check: Check) -> tuple[Any, ...]:
    return (check.name, check.tags, check.kind, check.timeout, check.grace, check.schedule, check.tz)


class Subscription:
    """One checks page: what it shows, what changed since, and its stream when one is open."""

    __slots__ = ("busy", "detached_at", "key_of", "pending", "project_id", "readonly", "shown", "stream", "token")

    def __init__(self, token: str, project_id: str, readonly: bool, now: float) -> None:
        self.token = token
        self.project_id = project_id
        self.readonly = readonly
        # uuid -> [signature, status, key] as the page shows it
        self.shown: dict[str, list[Any]] = {}
        self.pending: set[str] = set()
        self.stream: Stream | None = None
        self.busy = False  # a message is being written: later changes wait for the next pass
        self.detached_at = now


class Hub:
    """The observer behind every dashboard stream.

    hub = Hub(ctx, render_row)                                       # one per Application
    sub = hub.subscribe(project_id, readonly, checks_on_page, now)   # when a page renders
    hub.attach(token, project_id, readonly, stream)                  # the page's EventSource
    """

    def __init__(self, ctx: Context, render_row: Callable[[Check, bool, float], str]) -> None:
        self.ctx = ctx
        self.render_row = render_row
        self.subscriptions: dict[str, Subscription] = {}
        self.by_project: dict[str, list[Subscription]] = {}
        # Checks changed since the last pass, by project (a project with subscriptions has a set).
        self.changed: dict[str, set[str]] = {}
        self.observing = False
        self.interval = INTERVAL_S
        self._timer: asyncio.TimerHandle | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- Observer: called by the context on every change (pings included) --------------------------

    def check_changed(self, check: Check) -> None:
        changed = self.changed.get(check.project_id)
        if changed is None:
            return
        changed.add(check.uuid)
        if self._timer is None:
            self._schedule()

    def check_deleted(self, check: Check) -> None:
        self.check_changed(check)

    def flipped(self, check: Check, flip: Flip) -> None:
        pass  # the context reports the change with check_changed as well

    # -- subscriptions ------------------------------------------------------------------------------

    def subscribe(self, project_id: str, readonly: bool, checks: list[Check], now: float) -> Subscription:
        token = secrets.token_urlsafe(18)
        sub = Subscription(token, project_id, readonly, time.monotonic())
        for check in checks:
            sub.shown[check.uuid] = [signature(check), display_status(check, now), key_of(check, readonly)]
        waiting = [s for s in self.subscriptions.values() if s.stream is None]
        if len(waiting) >= MAX_WAITING:
            self._forget(min(waiting, key=lambda s: s.detached_at))
        self.subscriptions[token] = sub
        self.by_project.setdefault(project_id, []).append(sub)
        self.changed.setdefault(project_id, set())
        self._observe()
        return sub

    def attach(self, token: str, project_id: str, readonly: bool, stream: Stream) -> Subscription | None:
        """Give the page's subscription its stream; None for a token unknown here (or not the session's)."""
        sub = self.subscriptions.get(token)
        if sub is None or sub.project_id != project_id or sub.readonly != readonly:
            return None
        sub.stream = stream
        sub.busy = False
        if (sub.pending or self.changed.get(project_id)) and self._timer is None:
            self._schedule()
        return sub

    def detach(self, sub: Subscription, stream: Stream) -> None:
        if sub.stream is stream:
            sub.stream = None
            sub.detached_at = time.monotonic()

    def _forget(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.token, None)
        subs = self.by_project.get(sub.project_id)
        if subs is not None:
            subs.remove(sub)
            if not subs:
                del self.by_project[sub.project_id]
                self.changed.pop(sub.project_id, None)
        if not self.subscriptions:
            self._unobserve()

    def _observe(self) -> None:
        if not self.observing:
            self.ctx.observers.append(self)
            self.observing = True
            self._loop = asyncio.get_running_loop()
            self._sweeper = self._loop.call_later(SWEEP_S, self._sweep)

    def _unobserve(self) -> None:
        if self.observing:
            self.ctx.observers.remove(self)
            self.observing = False
            for handle in (self._timer, self._sweeper):
                if handle is not None:
                    handle.cancel()
            self._timer = self._sweeper = None

    # -- passes -------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._loop is not None and self.observing:
            self._timer = self._loop.call_later(self.interval, self._pass)

    def _pass(self) -> None:
        """Send each open stream what changed for it; a check's part is built once for all streams."""
        self._timer = None
        started = time.perf_counter()
        self._hand_out()
        now = self.ctx.clock()
        parts: dict[str, _Part] = {}
        waiting = False
        for sub in list(self.subscriptions.values()):
            if not sub.pending:
                continue
            if sub.stream is None or sub.busy:
                waiting = waiting or sub.stream is not None
                continue
            message = self._message(sub, now, parts)
            if message is not None:
                self._send(sub, message)
        took = time.perf_counter() - started
        self.interval = min(MAX_INTERVAL_S, max(INTERVAL_S, took * LOAD_FACTOR))
        if waiting and self._timer is None:
            self._schedule()

    def _hand_out(self) -> None:
        """Add each project's changes since the last pass to what each of its pages has pending."""
        for project_id, changed in self.changed.items():
            if changed:
                for sub in self.by_project.get(project_id, ()):
                    sub.pending |= changed
                changed.clear()

    def _message(self, sub: Subscription, now: float, parts: dict[str, _Part]) -> str | None:
        checks = self.ctx.index.checks
        readonly = sub.readonly
        rows: list[str] = []
        html: list[str] = []
        gone: list[str] = []
        for uuid in sub.pending:
            check = checks.get(uuid)
            shown = sub.shown.get(uuid)
            if check is None or check.project_id != sub.project_id:
                if shown is not None:
                    gone.append(shown[2])
                    del sub.shown[uuid]
                continue
            part = parts.get(uuid)
            if part is None:
                part = parts[uuid] = _Part(check, now)
            if shown is None or shown[0] != part.sig:
                html.append(part.html(readonly, self.render_row, now))
                sub.shown[uuid] = [part.sig, part.status, key_of(check, readonly)]
            else:
                rows.append(part.row(readonly, shown[2]))
                shown[1] = part.status
        sub.pending.clear()
        if not (rows or html or gone):
            return None
        return f'{{"now":{now},"rows":{{{",".join(rows)}}},"html":{{{",".join(html)}}},"gone":{json.dumps(gone)}}}'

    def _send(self, sub: Subscription, message: str) -> None:
        stream = sub.stream
        assert stream is not None
        sub.busy = True

        def done(ok: bool) -> None:
            sub.busy = False
            if not ok:
                self.detach(sub, stream)
            elif sub.pending and self._timer is None:
                self._schedule()

        stream.send(message, done)

    def _sweep(self) -> None:
        """Statuses that move with time alone, and subscriptions whose page went away."""
        self._sweeper = None
        now = self.ctx.clock()
        moment = time.monotonic()
        checks = self.ctx.index.checks
        for sub in list(self.subscriptions.values()):
            if sub.stream is None:
                if moment - sub.detached_at > KEEP_S:
                    self._forget(sub)
                continue
            for uuid, shown in sub.shown.items():
                check = checks.get(uuid)
                if check is not None and display_status(check, now) != shown[1]:
                    sub.pending.add(uuid)
            if sub.pending and self._timer is None:
                self._schedule()
        if self.observing and self._loop is not None:
            self._sweeper = self._loop.call_later(SWEEP_S, self._sweep)


class _Part:
    """One check's part of the messages of a pass, built at most once per role."""

    __slots__ = ("_html", "_row", "check", "sig", "status")

    def __init__(self, check: Check, now: float) -> None:
        self.check = check
        self.status = display_status(check, now)
        self.sig = signature(check)
        self._row: dict[bool, str] = {}
        self._html: dict[bool, str] = {}

    def row(self, readonly: bool, key: str) -> str:
        part = self._row.get(readonly)
        if part is None:
            last = self.check.last_ping
            state = [self.status, last]
            part = self._row[readonly] = f"{json.dumps(key)}:{json.dumps(state)}"
        return part

    def html(self, readonly: bool, render_row: Callable[[Check, bool, float], str], now: float) -> str:
        part = self._html.get(readonly)
        if part is None:
            key = key_of(self.check, readonly)
            part = self._html[readonly] = f"{json.dumps(key)}:{json.dumps(render_row(self.check, readonly, now))}"
        return part


def key_of(check: Check, readonly: bool) -> str:
    """How a page names a check: its uuid, or for a read-only session its unique key."""
    return check.unique_key if readonly else check.uuid

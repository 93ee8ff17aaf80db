"""The Check entity: its settings, its state, and the rules that move it between statuses.

Everything here is synchronous and pure: the time is always a parameter (epoch seconds).

    >>> c = Check(uuid="...", project_id="p", created=0.0, timeout=60, grace=60)
    >>> ping, flip = c.ping(PingRequest(action="success", method="GET"), now=100.0)
    >>> c.status_at(150.0), c.status_at(170.0), c.status_at(230.0)
    ('up', 'grace', 'down')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hcserver.domain.errors import Conflict
from hcserver.domain.pings import FAIL, IGN, START, SUCCESS, Flip, Ping, PingRequest
from hcserver.domain.schedules import SIMPLE, next_after
from hcserver.domain.slugs import slugify

NEW, UP, GRACE, DOWN, PAUSED, STARTED = "new", "up", "grace", "down", "paused", "started"

# Open runs kept per check (beyond the reference, which keeps one): the newest win.
MAX_OPEN_RUNS = 50
# Like the reference, a "duration" longer than this is treated as a lost start.
MAX_DURATION = 72 * 3600.0


@dataclass(slots=True, eq=False)
class Check:
    uuid: str
    project_id: str
    created: float
    name: str = ""
    slug: str = ""
    # Set when the user chose the slug: then a rename keeps it (in API v3; see `renamed`).
    slug_explicit: bool = False
    tags: str = ""
    desc: str = ""
    kind: str = SIMPLE
    timeout: int = 86400
    grace: int = 3600
    schedule: str = "* * * * *"
    tz: str = "UTC"
    manual_resume: bool = False
    methods: str = ""
    start_kw: str = ""
    success_kw: str = ""
    failure_kw: str = ""
    filter_subject: bool = False
    filter_body: bool = False
    filter_http_body: bool = False
    filter_default_fail: bool = False
    channels: tuple[str, ...] = ()
    # State
    status: str = NEW
    n_pings: int = 0
    last_ping: float | None = None
    last_duration: float | None = None
    last_exitstatus: int | None = None
    # Open runs, run id (None for pings without one) -> start time. None when empty, to save memory.
    runs: dict[str | None, float] | None = None
    # Restart grace: a deadline that passed while the server was down is held until this time.
    held_until: float | None = None

    # -- identity ---------------------------------------------------------------------------------

    @property
    def unique_key(self) -> str:
        """A stable id for read-only keys that does not reveal the UUID (a one-way hash of it)."""
        return hashlib.sha1(self.uuid.replace("-", "").encode()).hexdigest()

    @property
    def started(self) -> bool:
        return bool(self.runs)

    def tag_list(self) -> list[str]:
        return self.tags.split()

    # -- status -----------------------------------------------------------------------------------

    def oldest_run(self) -> float | None:
        return min(self.runs.values()) if self.runs else None

    def expected_after(self) -> float | None:
        """When the schedule expects the next ping (only while up); open runs play no part."""
        if self.status != UP or self.last_ping is None:
            return None
        if self.kind == SIMPLE:
            return self.last_ping + self.timeout
        return next_after(self.kind, self.schedule, self.tz, self.last_ping)

    def grace_start(self) -> float | None:
        """When the check enters its grace period, or None (new, paused, down, schedule ended).
        An open run brings it forward to the run's start: a run may last at most one grace."""
        result = self.expected_after()
        oldest = self.oldest_run()
        if oldest is not None and self.status != DOWN:
            result = oldest if result is None else min(result, oldest)
        return result

    def going_down_after(self) -> float | None:
        start = self.grace_start()
        if start is None:
            return None
        deadline = start + self.grace
        held = self.held_until
        return held if held is not None and held > deadline else deadline

    def status_at(self, now: float) -> str:
        """new / up / grace / down / paused, as a client would see it at `now`."""
        held = self.held_until is not None and now < self.held_until
        oldest = self.oldest_run()
        if oldest is not None and now >= oldest + self.grace and not held:
            return DOWN
        if self.status in (NEW, PAUSED, DOWN):
            return self.status
        # As the reference: a run only counts through the test above, not by starting the grace.
        start = self.expected_after()
        if start is None:
            return self.status
        if now >= start + self.grace:
            return GRACE if held else DOWN
        if now >= start:
            return GRACE
        return UP

    # -- changes ----------------------------------------------------------------------------------

    def _flip(self, new_status: str, now: float, reason: str) -> Flip | None:
        if new_status == self.status:
            return None
        flip = Flip(self.uuid, now, self.status, new_status, reason)
        self.status = new_status
        return flip

    def classify(self, body: bytes | None) -> str:
        """The keyword filter: failure, then success, then start keywords; else fail or ignore."""
        text = body.decode("utf-8", "replace") if body else ""
        if _has_keyword(text, self.failure_kw):
            return FAIL
        if _has_keyword(text, self.success_kw):
            return SUCCESS
        if _has_keyword(text, self.start_kw):
            return START
        return FAIL if self.filter_default_fail else IGN

    def ping(self, req: PingRequest, now: float) -> tuple[Ping, Flip | None]:
        """Record one ping: decide what it means for this check, apply it, return the record and any flip."""
        kind = req.action
        if self.methods == "POST" and req.method != "POST":
            kind = IGN
        elif self.status == PAUSED and self.manual_resume:
            kind = IGN
        elif self.filter_http_body and kind == SUCCESS and req.exitstatus is None:
            kind = self.classify(req.body)

        self.n_pings += 1
        duration: float | None = None
        flip: Flip | None = None
        if kind == START:
            self._open_run(req.rid, now)
        elif kind in (SUCCESS, FAIL):
            duration = self._close_run(req.rid, kind, now)
            if duration is not None:
                self.last_duration = duration
            self.last_ping = now
            self.last_exitstatus = req.exitstatus
            self.held_until = None
            flip = self._flip(UP if kind == SUCCESS else DOWN, now, kind)
        ping = Ping(
            self.n_pings, now, kind, req.scheme, req.remote_addr, req.method, req.ua,
            req.body, req.rid, req.exitstatus, duration,
        )  # fmt: skip
        return ping, flip

    def _open_run(self, rid: str | None, now: float) -> None:
        runs = self.runs if self.runs is not None else {}
        runs.pop(rid, None)
        runs[rid] = now
        while len(runs) > MAX_OPEN_RUNS:
            del runs[next(iter(runs))]
        self.runs = runs

    def _close_run(self, rid: str | None, kind: str, now: float) -> float | None:
        """Close the run this ping belongs to and return its duration.

        A ping with a rid closes only its own run (overlapping runs keep theirs). A ping without
        one behaves as the reference: it measures from a rid-less start and ends every open run.
        """
        runs = self.runs
        if not runs:
            return None
        started = runs.pop(rid, None)
        if rid is None:
            runs.clear()
        if not runs:
            self.runs = None
        if started is None:
            return None
        duration = now - started
        return duration if 0 <= duration < MAX_DURATION else None

    def go_down_if_due(self, now: float) -> Flip | None:
        """Move to down when the deadline has passed; the flip is dated at the deadline itself."""
        if self.status == DOWN or self.status_at(now) != DOWN:
            return None
        deadline = self.going_down_after()
        return self._flip(DOWN, min(now, deadline) if deadline is not None else now, "timeout")

    def hold(self, until: float) -> None:
        """Restart grace: hold a deadline that passed while the server was down until `until`.

        The hold ends with the next success or fail, a pause or a resume.
        """
        self.held_until = until

    def renamed(self, name: str, keep_chosen_slug: bool) -> dict[str, str]:
        """The fields a new name changes: the name, and the slug derived from it (Django's slugify)
        unless the user chose the slug and `keep_chosen_slug` (API v3; v1 and v2 always derive it).

        The caller sets them through the index, which follows both.
        """
        if keep_chosen_slug and self.slug_explicit:
            return {"name": name}
        self.slug_explicit = False
        return {"name": name, "slug": slugify(name)}

    def pause(self, now: float) -> Flip | None:
        if self.status == PAUSED:
            return None
        self.runs = None
        self.held_until = None
        return self._flip(PAUSED, now, "pause")

    def resume(self, now: float) -> Flip | None:
        """Leave paused for new. Raises Conflict (the API's 409) when the check is not paused."""
        if self.status != PAUSED:
            raise Conflict("check is not paused")
        self.last_ping = None
        self.runs = None
        self.held_until = None
        return self._flip(NEW, now, "resume")


def _has_keyword(text: str, keywords: str) -> bool:
    return any(kw.strip() and kw.strip() in text for kw in keywords.split(","))

"""`hcserver import-healthchecks`: checks, their history and state from a Healthchecks server, under
the same UUIDs, into a stopped server's store, in one transaction.

    snapshot = HealthchecksSource(url, key).fetch()
    async with open_offline(settings) as offline:
        result = await import_snapshot(offline, snapshot, ping_key=None, project_id=None)
        await offline.commit()

Settings go through the Management API's own validation (`parse_check_spec`) and use case
(`apply_spec`), so an imported check is one the API could have made. State (status, last ping,
duration, counters, an open run) is set as the source shows it, and flips are stored as history
only: nothing is alerted for them, and a check imported down stays down until its next ping.
Running it again updates each check of the same UUID; history already here is not written twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hcserver.admin.healthchecks import Snapshot, SourceCheck
from hcserver.admin.offline import AdminError, Offline
from hcserver.app import ensure_project
from hcserver.domain.checks import DOWN, NEW, PAUSED, UP, Check
from hcserver.domain.errors import Forbidden, Invalid
from hcserver.domain.pings import FAIL, SUCCESS, Flip, Ping
from hcserver.domain.projects import IssuedKeys, Project
from hcserver.services import apply_spec, ensure_room
from hcserver.specs import parse_check_spec
from persistence.codec import Codec

log = logging.getLogger("hcserver.import")

# The settings a check carries over, as the Management API names them (subject and subject_fail are
# views of success_kw and failure_kw there, so they are left out).
SETTINGS = (
    "name", "slug", "tags", "desc", "timeout", "grace", "schedule", "tz", "manual_resume", "methods",
    "start_kw", "success_kw", "failure_kw", "filter_subject", "filter_body", "filter_http_body",
    "filter_default_fail",
)  # fmt: skip
_STATUSES = {"new": NEW, "up": UP, "grace": UP, "down": DOWN, "paused": PAUSED}

# How to recreate a source channel of each kind here (the source's API does not show targets).
CHANNEL_ADVICE = {
    "webhook": 'recreate it: POST /api/v3/channels/ {"kind": "webhook", "url_down": ..., "url_up": ...}, '
    "or Channels > Add on the dashboard",
    "email": 'recreate it: POST /api/v3/channels/ {"kind": "email", "email": ...} '
    "(delivery needs the EMAIL_HOST settings)",
    "apprise": 'recreate it: POST /api/v3/channels/ {"kind": "apprise", "url": <the same Apprise URL>}',
}
_OTHER_ADVICE = "no such kind here: an Apprise channel may reach the same service (apprise.readthedocs.io)"


@dataclass
class Outcome:
    """What the import did (or, in a dry run, would do) to one check."""

    name: str
    uuid: str
    status: str
    action: str  # new, updated, unchanged, kept (newer here: settings only), skipped
    pings: int = 0  # pings added to the log
    flips: int = 0  # flips added
    note: str = ""


@dataclass
class ImportResult:
    project: Project
    keys: IssuedKeys | None  # the keys of a project made for the import, to show once
    outcomes: list[Outcome] = field(default_factory=list)
    channels: list[tuple[str, str, str]] = field(default_factory=list)  # (name, kind, what to do)
    ping_key_set: bool = False

    @property
    def changed(self) -> bool:
        return (
            self.keys is not None
            or self.ping_key_set
            or any(o.action not in ("unchanged", "skipped") for o in self.outcomes)
        )


async def import_snapshot(
    offline: Offline, snapshot: Snapshot, *, project_id: str | None, ping_key: str | None
) -> ImportResult:
    """Apply `snapshot` to the store's index and recorder; nothing is written before `offline.commit`."""
    ctx = offline.ctx
    keys = None
    if not ctx.index.projects:
        if project_id is not None:
            raise AdminError(f"{offline.path} has no project {project_id}: it has none yet (leave out --project)")
        keys = ensure_project(ctx)
    project = offline.project(project_id)
    result = ImportResult(project, keys)
    if ping_key is not None:
        result.ping_key_set = set_ping_key(offline, project, ping_key)
    for source in snapshot.checks:
        result.outcomes.append(await _import_check(offline, project, source))
    for channel in snapshot.channels:
        name, kind = str(channel.get("name", "")), str(channel.get("kind", ""))
        result.channels.append((name, kind, CHANNEL_ADVICE.get(kind, _OTHER_ADVICE)))
    return result


def set_ping_key(offline: Offline, project: Project, ping_key: str) -> bool:
    """Give `project` this ping key (as its hash); False when it already has it."""
    index = offline.index
    owner = index.project_by_ping_key(ping_key)
    if owner is project:
        return False
    if owner is not None:
        raise AdminError(f"--ping-key is already project {owner.id}'s ping key")
    if not ping_key.strip() or any(c.isspace() or c == "/" for c in ping_key):
        raise AdminError("--ping-key must be the key from the source's ping URLs (no spaces or slashes)")
    # The index is rebuilt from the store at the next start; this command looks checks up by uuid only.
    project.ping_key_hash = index.hasher.digest(ping_key)
    offline.ctx.project_changed(project)
    return True


async def _import_check(offline: Offline, project: Project, source: SourceCheck) -> Outcome:
    ctx = offline.ctx
    data = source.data
    outcome = Outcome(source.name, source.uuid, str(data.get("status", "")), "new")
    try:
        spec = parse_check_spec({name: data[name] for name in SETTINGS if name in data and data[name] is not None})
    except Invalid as exc:
        return _skipped(outcome, f"hcserver refuses its settings: {exc.message}")
    existing = ctx.index.checks.get(source.uuid)
    codec = Codec()
    before: bytes | None = None
    if existing is not None:
        if existing.project_id != project.id:
            return _skipped(outcome, f"a check with this UUID is in another project here ({existing.project_id})")
        check = existing
        before = codec.encode_check(check)
        apply_spec(ctx, check, spec, 3, creating=False)
        outcome.action = "updated"
    else:
        try:
            ensure_room(ctx, project.id)
        except Forbidden:
            return _skipped(outcome, "the project is at its check limit (HC_CHECK_LIMIT)")
        check = Check(uuid=source.uuid, project_id=project.id, created=ctx.clock())
        apply_spec(ctx, check, spec, 3, creating=True)
        ctx.index.add_check(check)

    pings = _pings(source, ctx.settings.ping_body_limit)
    n_pings = max(_int(data.get("n_pings")), max((p.n for p in pings), default=0))
    if existing is not None and existing.n_pings > n_pings:
        # Pinged here since the source last was: its state and history here are newer.
        outcome.action = "kept"
        outcome.note = "pinged here since: settings updated, state and history kept"
    else:
        old_n = existing.n_pings if existing is not None else 0
        _set_state(check, data, pings, n_pings)
        outcome.pings, outcome.flips = await offline.add_history(check, pings, _flips(source), after_n=old_n)
    after = codec.encode_check(check)
    if before == after and not outcome.pings and not outcome.flips:
        outcome.action = "unchanged" if outcome.action == "updated" else outcome.action
    else:
        ctx.check_changed(check)
    return outcome


def _skipped(outcome: Outcome, why: str) -> Outcome:
    outcome.action, outcome.note = "skipped", why
    return outcome


def _set_state(check: Check, data: dict[str, Any], pings: list[Ping], n_pings: int) -> None:
    """Status, counters, last ping and duration, and an open run, as the source shows them."""
    check.n_pings = n_pings
    last_ping = _time(data.get("last_ping"))
    closing = [p for p in pings if p.kind in (SUCCESS, FAIL)]
    last = closing[-1] if closing else None
    if last is not None and last_ping is not None and int(last.created) == int(last_ping):
        last_ping = last.created  # the log has the microseconds the check's field rounds away
    check.last_ping = last_ping
    duration = data.get("last_duration")
    check.last_duration = float(duration) if isinstance(duration, int | float) and duration else None
    check.last_exitstatus = last.exitstatus if last is not None else None
    status = str(data.get("status", NEW))
    if status == "started":
        # Started shows over the stored status: the last success or fail ping tells which it was.
        status = DOWN if last is not None and last.kind == FAIL else UP if last_ping is not None else NEW
    check.status = _STATUSES.get(status, UP if last_ping is not None else NEW)
    check.held_until = None
    check.runs = None
    if data.get("started") and check.status != PAUSED:
        start = next((p for p in reversed(pings) if p.kind == "start"), None)
        if start is not None and (last_ping is None or start.created > last_ping):
            check.runs = {start.rid: start.created}


def _pings(source: SourceCheck, body_limit: int) -> list[Ping]:
    """The source's ping log as Pings, oldest first; entries without a number or date are left out."""
    out: list[Ping] = []
    for item in source.pings:
        n, created = item.get("n"), _time(item.get("date"))
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or created is None:
            continue
        body = source.bodies.get(n)
        if body is not None and body_limit:
            body = body[:body_limit]
        duration = item.get("duration")
        exitstatus = item.get("exitstatus")
        rid = item.get("rid")
        out.append(
            Ping(
                n=n,
                created=created,
                kind=str(item.get("type", "success")),
                scheme=str(item.get("scheme") or "http"),
                remote_addr=str(item.get("remote_addr") or ""),
                method=str(item.get("method") or ""),
                ua=str(item.get("ua") or ""),
                body=body or None,
                rid=rid.lower() if isinstance(rid, str) and rid else None,
                exitstatus=exitstatus if isinstance(exitstatus, int) and not isinstance(exitstatus, bool) else None,
                duration=float(duration) if isinstance(duration, int | float) else None,
            )
        )
    out.sort(key=lambda p: p.n)
    unique: dict[int, Ping] = {p.n: p for p in out}
    return list(unique.values())


def _flips(source: SourceCheck) -> list[Flip]:
    """The source's flips, oldest first; it shows only up or not, so the old status is the flip before."""
    timed = sorted(
        (t, bool(item.get("up"))) for item in source.flips if (t := _time(item.get("timestamp"))) is not None
    )
    out: list[Flip] = []
    old = NEW
    for created, up in timed:
        new = UP if up else DOWN
        out.append(Flip(source.uuid, created, old, new, ""))
        old = new
    return out


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

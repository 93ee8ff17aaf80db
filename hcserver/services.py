"""The use cases every front end calls: record a ping, create/update/delete a check, pause/resume,
projects, channels.

Front ends parse their input, call one function here and render what it returns; what a change
means is decided here and in the domain, once. Every change goes to the index through the domain
and is reported through the context (`ctx.check_changed`, `ctx.project_changed`, ...).

    created, waiter = record_ping(ctx, route, request)      # the ping path: synchronous
    check, created = await create_check(ctx, project_id, spec, version=3)

The Management API's use cases are coroutines that return once the change is recorded (at once,
or after the commit in durable mode). `record_ping` returns the recorder's waiter instead, so the
ping path answers without a coroutine when there is nothing to wait for.
"""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from hcserver.alerts.channels import Channel, ChannelInvalid, ChannelSpec, parse_channel_body
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.targets import check_channel_targets
from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.errors import Conflict, Forbidden, Invalid, NotFound
from hcserver.domain.pings import PingRequest
from hcserver.domain.projects import IssuedKeys, Project, issue_keys, make_project
from hcserver.domain.schedules import SIMPLE
from hcserver.domain.slugs import slug_problem, slugify
from hcserver.specs import CheckSpec

log = logging.getLogger("hcserver.checks")

# A project at its check limit is logged at most this often (seconds): a crontab line with
# `?create=1` may be refused every minute on every host, and one line says it all.
LIMIT_LOG_INTERVAL = 60.0
# How long saving a channel may wait for DNS to check its hosts; a name not resolved by then is
# accepted, and checked at delivery.
SAVE_CHECK_TIMEOUT = 5.0

_RID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class CheckLimitReached(Forbidden):
    """The project holds HC_CHECK_LIMIT checks. The API answers 403; a `?create=1` ping 404."""


async def settle(waiter: Awaitable[None] | None) -> None:
    """Wait for what a recorder returned: None answers at once, an awaitable when it is done."""
    if waiter is not None:
        await waiter


# -- pings ---------------------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: made per request (see hcserver.domain.pings)
class PingRoute:
    """The check a ping names (by uuid, or by ping key and slug) and what its URL asks."""

    action: str
    uuid: str | None = None
    ping_key: str | None = None
    slug: str | None = None
    # May exceed 255 here: the reference answers 404 for an unknown check before it looks at this.
    exitstatus: int | None = None
    create: bool = False  # ?create=1: make a check for an unknown slug


def record_ping(ctx: Context, route: PingRoute, request: PingRequest) -> tuple[bool, Awaitable[None] | None]:
    """Find the check, making it for `?create=1`; apply the ping; report it.

    Returns (created, waiter): whether this ping made the check, and what the recorder returned
    (answer when it is done; None: answer now). `request.rid` comes as sent and is kept lowercased.
    Raises, in the reference's order: NotFound (no such check or ping key), Conflict (two checks
    share the slug), Invalid (an exit status over 255, then a rid that is not a UUID), then NotFound
    for a missing check without `?create=1`, Invalid for a slug too long to create, and NotFound
    when the project is at its check limit (the reference's answer there).
    """
    index = ctx.index
    check: Check | None
    project_id = ""
    uuid = route.uuid
    if uuid is not None:
        check = index.checks.get(uuid)
        if check is None:
            raise NotFound()
    else:
        assert route.ping_key is not None and route.slug is not None
        project = index.project_by_ping_key(route.ping_key)
        if project is None:
            raise NotFound()
        project_id = project.id
        found = index.by_slug(project_id, route.slug)
        if len(found) > 1:
            raise Conflict("ambiguous slug")
        check = found[0] if found else None
    if route.exitstatus is not None and route.exitstatus > 255:
        raise Invalid("invalid url format")
    rid = request.rid
    if rid is not None:
        if _RID.match(rid) is None:
            raise Invalid("invalid uuid format")
        request.rid = rid.lower()
    now = ctx.clock()
    created = False
    if check is None:
        if not route.create:
            raise NotFound()
        assert route.slug is not None
        check = create_pinged_check(ctx, project_id, route.slug, now)
        created = True
    ping, flip = check.ping(request, now)
    return created, ctx.ping_recorded(check, ping, flip)


def create_pinged_check(ctx: Context, project_id: str, slug: str, now: float) -> Check:
    """`?create=1`: a check named and slugged after the slug, with every channel of the project.

    Raises Invalid for a slug the API would refuse (over 100 characters), NotFound at the check limit.
    """
    if slug_problem(slug) is not None:
        raise Invalid("invalid url format")
    try:
        ensure_room(ctx, project_id)
    except CheckLimitReached:
        raise NotFound() from None
    check = new_check(project_id, now, name=slug, slug=slug)
    check.channels = tuple(c.id for c in ctx.index.project_channels(project_id))
    ctx.index.add_check(check)
    ctx.check_changed(check)
    return check


# -- checks --------------------------------------------------------------------------------------


def new_check(project_id: str, now: float, name: str = "", slug: str | None = None) -> Check:
    """A check with default settings; not yet in the index."""
    return Check(
        uuid=str(uuidlib.uuid4()),
        project_id=project_id,
        created=now,
        name=name,
        slug=slugify(name) if slug is None else slug,
        slug_explicit=slug is not None,
    )


def ensure_room(ctx: Context, project_id: str) -> None:
    """Raise CheckLimitReached when the project cannot take one more check."""
    limit = ctx.settings.check_limit
    if ctx.index.check_count(project_id) < limit:
        return
    now = ctx.clock()
    last = ctx.index.limit_logged.get(project_id)
    if last is None or now - last >= LIMIT_LOG_INTERVAL:
        ctx.index.limit_logged[project_id] = now
        project = ctx.index.projects.get(project_id)
        log.warning(
            "project %s (%s) is at its limit of %d checks (HC_CHECK_LIMIT): new checks are refused "
            "(said at most once a minute)",
            project_id,
            project.name if project is not None else "?",
            limit,
        )
    raise CheckLimitReached("check limit reached")


async def create_check(ctx: Context, project_id: str, spec: CheckSpec, *, version: int) -> tuple[Check, bool]:
    """Make a check from a validated spec, or update the one its `unique` fields match.

    Returns (check, created). Raises CheckLimitReached, Invalid (a channel that does not resolve).
    """
    existing = find_unique(ctx, project_id, spec)
    if existing is not None:
        await update_check(ctx, existing, spec, version=version)
        return existing, False
    ensure_room(ctx, project_id)
    check = new_check(project_id, ctx.clock())
    apply_spec(ctx, check, spec, version, creating=True)
    ctx.index.add_check(check)
    await settle(ctx.check_changed(check))
    return check, True


async def update_check(ctx: Context, check: Check, spec: CheckSpec, *, version: int) -> None:
    """Apply the fields a spec carries. Raises Invalid (a channel that does not resolve): then nothing changed."""
    apply_spec(ctx, check, spec, version, creating=False)
    await settle(ctx.check_changed(check))


async def delete_check(ctx: Context, check: Check) -> None:
    await settle(ctx.check_deleted(check))


async def pause(ctx: Context, check: Check) -> None:
    await settle(ctx.check_changed(check, check.pause(ctx.clock())))


async def resume(ctx: Context, check: Check) -> None:
    """Raises Conflict when the check is not paused."""
    await settle(ctx.check_changed(check, check.resume(ctx.clock())))


def resolve_channels(ctx: Context, project_id: str, value: str) -> tuple[str, ...]:
    """The check's `channels` field: "*" all, "" none, or comma-separated ids or names."""
    available = ctx.index.project_channels(project_id)
    if value == "*":
        return tuple(c.id for c in available)
    if value == "":
        return ()
    chosen: list[str] = []
    for item in value.split(","):
        if item == "":
            raise Invalid("empty channel identifier")
        matches = [c for c in available if c.id == item or c.name == item]
        if not matches:
            raise Invalid(f"invalid channel identifier: {item}")
        if len(matches) > 1:
            raise Invalid(f"non-unique channel identifier: {item}")
        if matches[0].id not in chosen:
            chosen.append(matches[0].id)
    return tuple(chosen)


def find_unique(ctx: Context, project_id: str, spec: CheckSpec) -> Check | None:
    """The first check of the project matching every field named in `unique`, if all were sent."""
    if not spec.unique or any(getattr(spec, name) is None for name in spec.unique):
        return None
    return ctx.index.find_matching(project_id, {name: getattr(spec, name) for name in spec.unique})


def apply_spec(ctx: Context, check: Check, spec: CheckSpec, version: int, creating: bool) -> None:
    """Apply the fields that were sent. Channels are resolved first so a bad id changes nothing."""
    channels = None if spec.channels is None else resolve_channels(ctx, check.project_id, spec.channels)
    # The fields the index follows (a `unique` upsert matches on them) change through it, at the end.
    followed: dict[str, Any] = {}
    if spec.name is not None and (creating or spec.name != check.name):
        followed.update(check.renamed(spec.name, keep_chosen_slug=version >= 3))
    if spec.slug is not None:
        followed["slug"] = spec.slug
        check.slug_explicit = True
    kind = spec.kind()
    if kind == SIMPLE:
        assert spec.timeout is not None
        check.kind = SIMPLE
        followed["timeout"] = spec.timeout
    elif kind is not None:
        assert spec.schedule is not None
        check.kind, check.schedule = kind, spec.schedule
    if spec.subject is not None:
        check.success_kw = spec.subject
    if spec.subject_fail is not None:
        check.failure_kw = spec.subject_fail
    if spec.subject is not None or spec.subject_fail is not None:
        check.filter_subject = bool(check.success_kw or check.failure_kw)
    for name in ("desc", "manual_resume", "methods", "tz", "start_kw", "success_kw",
                 "failure_kw", "filter_subject", "filter_body", "filter_http_body", "filter_default_fail"):  # fmt: skip
        value = getattr(spec, name)
        if value is not None:
            setattr(check, name, value)
    for name in ("tags", "grace"):
        value = getattr(spec, name)
        if value is not None:
            followed[name] = value
    if channels is not None:
        check.channels = channels
    if creating:
        for name, value in followed.items():
            setattr(check, name, value)
    else:
        ctx.index.set_fields(check, followed)


# -- projects ------------------------------------------------------------------------------------


def add_project(ctx: Context, name: str, keys: IssuedKeys | None = None) -> tuple[Project, IssuedKeys]:
    """Make a project (with `keys`, or new ones) and report it without waiting for the recorder.

    For the first start, whose recorder only flushes once the server listens; the API uses
    `create_project`.
    """
    project, keys = _make_project(ctx, name, keys)
    ctx.project_changed(project)
    return project, keys


async def create_project(ctx: Context, name: str) -> tuple[Project, IssuedKeys]:
    """Make a project with new keys; return once it is recorded (its keys are shown only once)."""
    project, keys = _make_project(ctx, name, None)
    await settle(ctx.project_changed(project))
    return project, keys


def _make_project(ctx: Context, name: str, keys: IssuedKeys | None) -> tuple[Project, IssuedKeys]:
    keys = keys or issue_keys()
    project = make_project(str(uuidlib.uuid4()), name, ctx.clock(), ctx.index.hasher, keys)
    ctx.index.add_project(project)
    return project, keys


async def delete_project(ctx: Context, project: Project) -> None:
    """Delete a project with all its checks."""
    for check in list(ctx.index.project_checks(project.id)):
        await settle(ctx.check_deleted(check))
    await settle(ctx.project_deleted(project))


# -- channels ------------------------------------------------------------------------------------


async def create_channel(ctx: Context, project_id: str, body: dict[str, Any]) -> Channel:
    """Make a channel from a create body. Raises Invalid: a bad body, or a host delivery would refuse."""
    try:
        channel = Channel.create(project_id, body, ctx.clock())
    except ChannelInvalid as e:
        raise Invalid(e.message) from None
    await check_targets(ctx, channel.spec)
    ctx.index.channels[channel.id] = channel
    await settle(ctx.channel_changed(channel.to_record()))
    return channel


async def update_channel(ctx: Context, channel: Channel, body: dict[str, Any]) -> None:
    """Apply an update body. Raises Invalid as `create_channel`, NotFound if deleted meanwhile."""
    try:
        data = parse_channel_body(body, current=channel)
    except ChannelInvalid as e:
        raise Invalid(e.message) from None
    await check_targets(ctx, data.spec)
    if ctx.index.channels.get(channel.id) is not channel:
        raise NotFound("not found")  # deleted while its hosts were being checked
    channel.apply(data)
    await settle(ctx.channel_changed(channel.to_record()))


async def delete_channel(ctx: Context, channel: Channel) -> None:
    """Delete a channel; the checks that used it no longer do."""
    del ctx.index.channels[channel.id]
    for check in ctx.index.project_checks(channel.project_id):
        if channel.id in check.channels:
            check.channels = tuple(c for c in check.channels if c != channel.id)
            await settle(ctx.check_changed(check))
    await settle(ctx.channel_deleted(channel.id))


def alert_settings(ctx: Context) -> AlertSettings:
    """The delivery settings, which the notifier holds; the defaults (private addresses refused) in a
    server that delivers no alerts."""
    for observer in ctx.observers:
        settings = getattr(observer, "settings", None)
        if isinstance(settings, AlertSettings):
            return settings
    return AlertSettings()


async def check_targets(ctx: Context, spec: ChannelSpec) -> None:
    """Refuse (Invalid) a channel whose hosts delivery would refuse as private addresses."""
    settings = alert_settings(ctx)
    try:
        await check_channel_targets(
            spec, allow_private=settings.allow_private, timeout=min(settings.timeout, SAVE_CHECK_TIMEOUT)
        )
    except ChannelInvalid as e:
        raise Invalid(e.message) from None

"""Operations the handlers share: making checks, the check limit, and applying validated API specs."""

from __future__ import annotations

import logging
import uuid as uuidlib
from typing import Any

from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.errors import Forbidden, Invalid
from hcserver.domain.schedules import SIMPLE
from hcserver.domain.slugs import slugify
from hcserver.web.specs import CheckSpec

log = logging.getLogger("hcserver.checks")

# A project at its check limit is logged at most this often (seconds): a crontab line with
# `?create=1` may be refused every minute on every host, and one line says it all.
LIMIT_LOG_INTERVAL = 60.0


class CheckLimitReached(Forbidden):
    """The project holds HC_CHECK_LIMIT checks. The API answers 403; a `?create=1` ping 404."""


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


def create_pinged_check(ctx: Context, project_id: str, slug: str, now: float) -> Check:
    """`?create=1`: a check named and slugged after the slug, with every channel of the project.

    The caller has validated the slug (`specs.slug_problem`); raises CheckLimitReached.
    """
    ensure_room(ctx, project_id)
    check = new_check(project_id, now, name=slug, slug=slug)
    assign_all_channels(ctx, check)
    ctx.index.add_check(check)
    ctx.check_changed(check)
    return check


def assign_all_channels(ctx: Context, check: Check) -> None:
    check.channels = tuple(c.id for c in ctx.index.project_channels(check.project_id))


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
        followed["name"] = spec.name
        # v1/v2 always re-derive; v3 keeps a slug the user chose (REFERENCE.md section 4).
        if version < 3 or not check.slug_explicit:
            followed["slug"] = slugify(spec.name)
            check.slug_explicit = False
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

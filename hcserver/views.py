"""Domain objects -> JSON shapes: checks, pings, flips, channels and badges, for the Management API
and alert delivery (a webhook's $JSON, the email's details). Pure: the time is a parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hcserver.config import Settings
from hcserver.domain.checks import DOWN, GRACE, STARTED, UP, Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.schedules import SIMPLE

if TYPE_CHECKING:
    from hcserver.alerts.channels import Channel


def isostring(ts: float | None) -> str | None:
    """ISO 8601 in UTC at seconds precision, as the reference prints dates: 2024-01-02T03:04:05+00:00."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def isostring_us(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def check_to_json(
    check: Check, now: float, settings: Settings, version: int, readonly: bool, badge_key: str
) -> dict[str, Any]:
    """The API's check: `version` 1-3 of the API, `readonly` for a read-only key (no uuid, no URLs
    that change it), `badge_key` of the check's project."""
    status = check.status_at(now)
    oldest = check.oldest_run()
    # v1 says "started" for any run still inside its grace time, a stored-down check's too.
    if version == 1 and oldest is not None and now < oldest + check.grace:
        status = STARTED
    result: dict[str, Any] = {
        "name": check.name,
        "slug": check.slug,
        "tags": check.tags,
        "desc": check.desc,
        "grace": check.grace,
        "n_pings": check.n_pings,
        "status": status,
        "started": check.started,
        "last_ping": isostring(check.last_ping),
        "next_ping": isostring(check.grace_start()),
        "manual_resume": check.manual_resume,
        "methods": check.methods,
        # As the reference: the subject keywords show only while subject filtering is on.
        "subject": check.success_kw if check.filter_subject else "",
        "subject_fail": check.failure_kw if check.filter_subject else "",
        "start_kw": check.start_kw,
        "success_kw": check.success_kw,
        "failure_kw": check.failure_kw,
        "filter_subject": check.filter_subject,
        "filter_body": check.filter_body,
        "filter_http_body": check.filter_http_body,
        "filter_default_fail": check.filter_default_fail,
        "badge_url": badge_url(settings, badge_key, check.unique_key, fmt="svg"),
    }
    if check.last_duration:
        result["last_duration"] = int(check.last_duration)
    if check.kind == SIMPLE:
        result["timeout"] = check.timeout
    else:
        result["schedule"] = check.schedule
        result["tz"] = check.tz
    if readonly:
        result["unique_key"] = check.unique_key
    else:
        api = f"{settings.site_root}/api/v{version}/checks/{check.uuid}"
        result["uuid"] = check.uuid
        result["ping_url"] = settings.ping_endpoint + check.uuid
        result["update_url"] = api
        result["pause_url"] = api + "/pause"
        result["resume_url"] = api + "/resume"
        result["channels"] = ",".join(check.channels)
    return result


def ping_to_json(ping: Ping, *, check: Check, settings: Settings, version: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": ping.kind,
        "date": isostring_us(ping.created),
        "n": ping.n,
        "scheme": ping.scheme,
        "remote_addr": ping.remote_addr,
        "method": ping.method,
        "ua": ping.ua,
        "rid": ping.rid,
    }
    if ping.duration is not None:
        result["duration"] = round(ping.duration, 3)
    result["body_url"] = (
        f"{settings.site_root}/api/v{version}/checks/{check.uuid}/pings/{ping.n}/body" if ping.body else None
    )
    return result


def flip_to_json(flip: Flip) -> dict[str, Any]:
    return {"timestamp": isostring(flip.created), "up": 1 if flip.new_status == UP else 0}


def badge_url(settings: Settings, badge_key: str, tag: str, *, fmt: str, states: int = 2) -> str:
    suffix = "-3" if states == 3 else ""
    quoted = quote(tag, safe="*")
    if quoted.endswith("-3"):
        # Else the 2-state badge of tag "x-3" would read as the 3-state badge of "x".
        quoted = quoted[:-1] + "%33"
    return f"{settings.site_root}/badge/{badge_key}/{quoted}{suffix}.{fmt}"


def badge_status(statuses: list[str], *, states: int) -> str:
    """Worst status of a group: down, then (3-state only) late, else up."""
    if DOWN in statuses:
        return "down"
    if states == 3 and GRACE in statuses:
        return "late"
    return "up"


def channel_summary(channel: Channel) -> dict[str, Any]:
    """The reference's `GET /api/v3/channels/` item."""
    return {"id": channel.id, "name": channel.name, "kind": channel.kind}


def channel_to_json(channel: Channel) -> dict[str, Any]:
    """The full form: the summary, the kind's fields, and the delivery state."""
    return {
        **channel_summary(channel),
        **channel.spec.to_record(),
        "last_notify": isostring(channel.last_notify),
        "last_error": channel.last_error,
        "disabled": channel.disabled,
    }

"""Domain objects -> the JSON shapes of the Management API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hcserver.config import Settings
from hcserver.domain.checks import DOWN, GRACE, STARTED, UP, Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.schedules import SIMPLE


def isostring(ts: float | None) -> str | None:
    """Seconds precision, `+00:00`, as the reference prints check times."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def isostring_us(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def check_to_json(
    check: Check, now: float, settings: Settings, version: int, readonly: bool, badge_key: str
) -> dict[str, Any]:
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
        "badge_url": badge_url(settings, badge_key, check.unique_key, "svg"),
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


def ping_to_json(ping: Ping, check: Check, settings: Settings, version: int) -> dict[str, Any]:
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


def badge_url(settings: Settings, badge_key: str, tag: str, fmt: str, states: int = 2) -> str:
    suffix = "-3" if states == 3 else ""
    quoted = quote(tag, safe="*")
    if quoted.endswith("-3"):
        # Else the 2-state badge of tag "x-3" would read as the 3-state badge of "x".
        quoted = quoted[:-1] + "%33"
    return f"{settings.site_root}/badge/{badge_key}/{quoted}{suffix}.{fmt}"


def badge_status(statuses: list[str], states: int) -> str:
    """Worst status of a group: down, then (3-state only) late, else up."""
    if DOWN in statuses:
        return "down"
    if states == 3 and GRACE in statuses:
        return "late"
    return "up"

"""`hcserver export` and `hcserver import-json`: a store as one JSON document a person can read.

    dump = await export(offline)                  # projects, checks, channels, pings, flips
    result = await load(offline, dump)            # into another (or the same) stopped store

Keys are kept as their hashes under the store's secret. Loaded into the store it came from (a
restore), a project keeps its keys; loaded into another store, whose secret differs, a project new
there gets new keys, shown once. Ping bodies are base64. A check already here under the same UUID
is replaced by the dump's, unless it has been pinged here since (more pings): then it is kept.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from hcserver.admin.offline import AdminError, Offline
from hcserver.alerts.channels import Channel
from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import IssuedKeys, Project, issue_keys, make_project

FORMAT = "hcserver-dump"
VERSION = 1
_PROJECT_KEYS = ("api_key_hash", "ping_key_hash", "api_key_readonly_hash")


def secret_id(secret: bytes) -> str:
    """Names the store's secret without revealing it: equal ids, equal secrets."""
    return hashlib.sha256(b"hcserver-dump:" + secret).hexdigest()[:16]


async def export(offline: Offline) -> dict[str, Any]:
    index = offline.index
    projects = []
    for project in sorted(index.projects.values(), key=lambda p: p.created):
        checks = []
        for check in index.project_checks(project.id):
            pings = await offline.recorder.recent_pings(check, offline.recorder.ping_log_limit)
            flips = await offline.recorder.flips(check)
            checks.append(
                {
                    **_check_json(check),
                    "pings": [_ping_json(p) for p in reversed(pings)],
                    "flips": [
                        {
                            "created": f.created,
                            "old_status": f.old_status,
                            "new_status": f.new_status,
                            "reason": f.reason,
                        }
                        for f in flips
                    ],
                }
            )
        channels = [c.to_record() for c in offline.channels.values() if c.project_id == project.id]
        projects.append(
            {
                "id": project.id,
                "name": project.name,
                "created": project.created,
                **{key: (getattr(project, key) or b"").hex() or None for key in _PROJECT_KEYS},
                "channels": channels,
                "checks": checks,
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported": time.time(),
        "secret_id": secret_id(await offline.store.secret()),
        "projects": projects,
    }


@dataclass
class LoadResult:
    projects: int = 0
    checks: int = 0
    kept: int = 0  # checks pinged here since the dump: left as they are
    channels: int = 0
    pings: int = 0
    flips: int = 0
    new_keys: list[tuple[Project, IssuedKeys]] = field(default_factory=list)


async def load(offline: Offline, dump: Any) -> LoadResult:
    """Put the dump's projects, channels, checks, pings and flips in the index and the recorder."""
    if not isinstance(dump, dict) or dump.get("format") != FORMAT:
        raise AdminError("not an hcserver dump (hcserver export makes them)")
    if dump.get("version") != VERSION:
        raise AdminError(f"dump version {dump.get('version')!r}: this hcserver reads version {VERSION}")
    same_secret = dump.get("secret_id") == secret_id(await offline.store.secret())
    ctx, index = offline.ctx, offline.index
    result = LoadResult()
    try:
        for item in dump["projects"]:
            project = index.projects.get(str(item["id"]))
            if project is None:
                if same_secret:
                    hashes = {key: bytes.fromhex(item[key]) if item.get(key) else None for key in _PROJECT_KEYS}
                    project = Project(str(item["id"]), str(item["name"]), float(item["created"]), **hashes)  # type: ignore[arg-type]
                else:
                    keys = issue_keys()
                    project = make_project(
                        str(item["id"]), str(item["name"]), float(item["created"]), index.hasher, keys
                    )
                    result.new_keys.append((project, keys))
                index.add_project(project)
            else:
                project.name = str(item["name"])
            ctx.project_changed(project)
            result.projects += 1
            for record in item.get("channels", []):
                channel = Channel.from_record({**record, "project_id": project.id})
                index.channels[channel.id] = channel
                offline.channels[channel.id] = channel
                ctx.channel_changed(channel.to_record())
                result.channels += 1
            for data in item.get("checks", []):
                await _load_check(offline, project, data, result)
    except (KeyError, TypeError, ValueError) as exc:
        raise AdminError(f"the dump is damaged: {type(exc).__name__}: {exc}") from None
    return result


async def _load_check(offline: Offline, project: Project, data: dict[str, Any], result: LoadResult) -> None:
    index = offline.index
    check = _check_from_json(data, project.id)
    existing = index.checks.get(check.uuid)
    if existing is not None and existing.n_pings > check.n_pings:
        result.kept += 1
        return
    after_n = 0
    if existing is not None:
        if existing.project_id != project.id:
            raise AdminError(
                f"check {check.uuid} is in project {existing.project_id} here, in {project.id} in the dump"
            )
        after_n = existing.n_pings
        index.remove_check(existing)
    index.add_check(check)
    pings = [_ping_from_json(p) for p in data.get("pings", [])]
    flips = [Flip(check.uuid, float(f["created"]), str(f["old_status"]), str(f["new_status"]), str(f.get("reason", "")))
             for f in data.get("flips", [])]  # fmt: skip
    added, new_flips = await offline.add_history(check, pings, flips, after_n=after_n)
    offline.ctx.check_changed(check)
    result.checks += 1
    result.pings += added
    result.flips += new_flips


# -- the JSON shapes -------------------------------------------------------------------------------


def _check_json(check: Check) -> dict[str, Any]:
    out = {f.name: getattr(check, f.name) for f in dataclasses.fields(Check) if f.name not in ("project_id", "runs")}
    out["channels"] = list(check.channels)
    out["runs"] = [[rid, started] for rid, started in (check.runs or {}).items()]
    return out


def _check_from_json(data: dict[str, Any], project_id: str) -> Check:
    names = {f.name for f in dataclasses.fields(Check)} - {"project_id", "runs", "channels"}
    values = {name: data[name] for name in names if name in data}
    check = Check(project_id=project_id, **values)
    check.channels = tuple(str(c) for c in data.get("channels", []))
    runs = {rid: float(started) for rid, started in data.get("runs", [])}
    check.runs = runs or None
    return check


def _ping_json(ping: Ping) -> dict[str, Any]:
    out = dataclasses.asdict(ping)
    out["body"] = base64.b64encode(ping.body).decode() if ping.body is not None else None
    return out


def _ping_from_json(data: dict[str, Any]) -> Ping:
    values = {f.name: data[f.name] for f in dataclasses.fields(Ping) if f.name in data}
    if values.get("body") is not None:
        values["body"] = base64.b64decode(values["body"])
    return Ping(**values)

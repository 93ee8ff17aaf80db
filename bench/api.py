"""The few Management API calls the bench makes: create checks, sum n_pings, read the flush status.

checks = create_checks(server, keys, 1000, workdir)
ping_paths(checks), slug_paths(checks, keys.ping)
sum_n_pings(server, keys)
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.server import Keys, ServerProcess
from bench.wrk import LoadSpec, run_wrk


class ApiError(RuntimeError):
    """The server answered an API call in a way the bench cannot use."""


@dataclass(frozen=True, slots=True)
class CheckRef:
    uuid: str
    slug: str


def request_json(
    server: ServerProcess,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: object = None,
    timeout: float = 120.0,
) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON or the raw text when it is not JSON)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    headers = {"X-Api-Key": key} if key else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def create_checks(
    server: ServerProcess,
    keys: Keys,
    count: int,
    workdir: Path,
    *,
    prefix: str = "bench",
    offset: int = 0,
    connections: int = 32,
) -> list[CheckRef]:
    """Create `count` checks named and slugged `<prefix>-NNNNNNN` through the API, driven by wrk."""
    spec = LoadSpec(
        mode="create",
        connections=max(1, min(connections, count)),
        budget=count,
        prefix=prefix,
        offset=offset,
        headers=(f"X-Api-Key: {keys.api}",),
        # Generous: the API should create several thousand checks a second.
        max_seconds=60.0 + count / 200.0,
    )
    result = run_wrk(server.url, spec, workdir / "wrk-create")
    created = [CheckRef(uuid, slug) for uuid, slug in result.created]
    if len(created) != count:
        raise ApiError(
            f"asked {server.name} for {count} checks, got {len(created)} (answers {result.codes}, "
            f"socket errors {result.socket_errors}, finished={result.finished})"
        )
    return created


def list_checks(server: ServerProcess, keys: Keys) -> list[dict[str, Any]]:
    status, data = request_json(server, "GET", "/api/v3/checks/", key=keys.api, timeout=300.0)
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise ApiError(f"GET /api/v3/checks/ answered {status}: {str(data)[:300]}")
    return list(data["checks"])


def sum_n_pings(server: ServerProcess, keys: Keys) -> int:
    return sum(int(check.get("n_pings", 0)) for check in list_checks(server, keys))


def flush_status(server: ServerProcess, keys: Keys) -> dict[str, Any] | None:
    """The verbose status (pending, last_flush_ms, ...), or None while the server does not offer it."""
    try:
        status, data = request_json(server, "GET", "/api/v3/status/?verbose=1", key=keys.admin, timeout=10.0)
    except OSError:
        return None
    if status != 200 or not isinstance(data, dict) or "pending" not in data:
        return None
    return data


def ping_paths(checks: list[CheckRef]) -> list[str]:
    return [f"/ping/{c.uuid}" for c in checks]


def slug_paths(checks: list[CheckRef], ping_key: str) -> list[str]:
    return [f"/ping/{ping_key}/{c.slug}" for c in checks]


def write_paths(paths: list[str], file: Path) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join(paths) + "\n")
    return file

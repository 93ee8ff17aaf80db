"""Helpers for the persistence tests: domain objects, a writer on a real file, and running coroutines."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping, PingRequest
from hcserver.domain.projects import Project
from persistence.store import Store
from persistence.writebehind import WriteBehind

T0 = 1_700_000_000.0
# The repository root: PYTHONPATH for the processes the tests start.
ROOT = Path(__file__).resolve().parents[2]
needs_sched_idle = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
# Every async test gets this long before it fails instead of hanging the suite.
TEST_TIMEOUT = 20.0


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an `async def` test on a fresh asyncio loop, bounded by TEST_TIMEOUT."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT))

    return wrapper


def project(pid: str = "p1") -> Project:
    return Project(pid, f"Project {pid}", T0, pid.encode().ljust(32, b"a"), pid.encode().ljust(32, b"b"))


def check(project_id: str = "p1", **fields: Any) -> Check:
    return Check(uuid=str(uuid.uuid4()), project_id=project_id, created=T0, **fields)


def ping(c: Check, now: float, action: str = "success", body: bytes | None = None) -> tuple[Ping, Flip | None]:
    return c.ping(PingRequest(action=action, method="POST" if body else "GET", body=body), now)


async def open_writer(path: Path, **settings: Any) -> WriteBehind:
    durable = settings.pop("durable", False)
    store = await Store.open(
        path,
        durable=durable,
        busy_timeout_ms=settings.pop("busy_timeout_ms", 2000),
        ping_log_limit=settings.get("ping_log_limit", 100),
    )
    return WriteBehind(store, durable=durable, **settings)


async def writer_with_one_ping(path: Path) -> tuple[WriteBehind, Check]:
    """A writer on `path` whose first flush (a project, a check and its first ping) has committed."""
    wb = await open_writer(path)
    wb.project_changed(project())
    c = check()
    wb.ping_recorded(c, *ping(c, T0))
    assert await wb.flush_once()
    return wb, c


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file through a separate, plain sqlite3 connection: what another process would see."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def count(path: Path, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
    return int(rows(path, f"SELECT COUNT(*) FROM {table} {where}", params)[0][0])


def thread_policies(pid: int) -> dict[int, int]:
    """Each thread of a process: its id and its scheduling policy."""
    return {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def fill(fs: Path, leave_bytes: int) -> Path:
    """Take all of `fs`'s free space but `leave_bytes` with a file; delete the file to give it back."""
    filler = fs / "filler"
    free = shutil.disk_usage(fs).free - leave_bytes
    with filler.open("wb") as f:
        block = b"\0" * (1 << 20)
        while free > 0:
            f.write(block[: min(free, len(block))])
            free -= len(block)
    return filler

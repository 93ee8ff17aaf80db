"""A stopped server's store, opened for one command: recovered into an index and written back once.

    async with open_offline(settings) as offline:
        ctx = offline.ctx                      # the index, projects and checks as `serve` loads them
        await services.create_project(...)     # use cases change the index; the recorder gathers
        await offline.commit()                 # everything, in one transaction

The recorder is the server's write-behind, never started: what the use cases report waits in its
pending batch until `commit` writes the whole batch in one transaction. Nothing is written without
`commit`, and a commit that fails leaves the file as it was.

`read_view(path)` reads a store without locking it, from its last commit, for commands that may run
beside a server.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from hcserver.alerts.channels import Channel
from hcserver.config import Settings
from hcserver.context import Context
from hcserver.domain.checks import Check
from hcserver.domain.index import Index
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import KeyHasher, Project
from persistence.codec import Codec, DecodeError
from persistence.lock import ensure_free
from persistence.recovery import recover
from persistence.store import Store
from persistence.writebehind import WriteBehind

# Limits of the write-behind that would make it ask callers to wait: a command gathers everything
# before its one commit, so there is nothing to wait for.
_UNBOUNDED = 1 << 62


class AdminError(RuntimeError):
    """A command cannot do what it was asked; the message is the one line it prints."""


@dataclass
class Offline:
    """A store opened by `open_offline`: `ctx` as the server's, `commit` writes what changed."""

    path: str
    ctx: Context
    store: Store
    recorder: WriteBehind
    channels: dict[str, Channel] = field(default_factory=dict)
    created: bool = False  # the file did not exist (or, in a dry run, was not opened at all)

    @property
    def index(self) -> Index:
        return self.ctx.index

    def first_project(self) -> Project | None:
        """The project `serve` made on the first start: the oldest."""
        return min(self.index.projects.values(), key=lambda p: p.created, default=None)

    def project(self, project_id: str | None) -> Project:
        """The project with this uuid, or the first one; AdminError when there is none."""
        if project_id is None:
            found = self.first_project()
            if found is None:
                raise AdminError(f"{self.path} has no project")
            return found
        found = self.index.projects.get(project_id)
        if found is None:
            raise AdminError(f"{self.path} has no project {project_id} (hcserver projects list shows them)")
        return found

    async def add_history(self, check: Check, pings: list[Ping], flips: list[Flip], *, after_n: int) -> tuple[int, int]:
        """Record a check's pings numbered above `after_n` (and within its ping log; oldest first,
        under their own numbers) and the flips not stored yet (by time and new status), as history:
        nothing is alerted. Returns how many of each were added."""
        floor = max(after_n, check.n_pings - self.recorder.ping_log_limit)
        added = 0
        for ping in sorted(pings, key=lambda p: p.n):
            if floor < ping.n <= check.n_pings:
                self.ctx.recorder.ping_recorded(check, ping, None)
                added += 1
        stored = await self.recorder.flips(check) if check.uuid in self.index.checks else []
        seen = {(int(f.created), f.new_status) for f in stored}
        new_flips = 0
        for flip in sorted(flips, key=lambda f: f.created):
            if (int(flip.created), flip.new_status) not in seen:
                seen.add((int(flip.created), flip.new_status))
                self.ctx.recorder.flip_made(check, flip)
                new_flips += 1
        return added, new_flips

    async def commit(self) -> None:
        """Write every change reported since opening, in one transaction."""
        if await self.recorder.flush_once():
            return
        error = self.recorder.status().get("error")
        if error:
            raise AdminError(f"cannot write {self.path} ({error}); nothing was written")


def store_ping_slots(path: str) -> int | None:
    """The ping ring size the store was made for, or None for a new or unreadable file. Commands
    open the store with it, so they never resize a ring that the server's PING_LOG_LIMIT chose."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'ping_slots'").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and isinstance(row[0], int) else None


@contextlib.asynccontextmanager
async def open_offline(settings: Settings, *, dry_run: bool = False) -> AsyncIterator[Offline]:
    """Open `settings.db` as `serve` would, refusing (StoreInUse) while a server uses it. In a dry
    run a store that does not exist yet is not made: an empty one in memory stands for it."""
    path = settings.db
    ensure_free(path)
    exists = os.path.exists(path)
    slots = store_ping_slots(path) or settings.ping_log_limit
    if dry_run and not exists:
        store = await Store.open(":memory:", ping_log_limit=slots)
    else:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise AdminError(f"{directory} does not exist: point --db (HC_DB) at the store file")
        store = await Store.open(path, ping_log_limit=slots)
    try:
        index = Index(KeyHasher(await store.secret()))
        report = await recover(store, index, ping_log_limit=slots)
        recorder = WriteBehind(
            store,
            max_pending=_UNBOUNDED,
            max_pending_bytes=_UNBOUNDED,
            max_pending_age_ms=float(_UNBOUNDED),
            flush_batch=_UNBOUNDED,
            ping_log_limit=slots,
        )
        ctx = Context(settings=settings.replace(ping_log_limit=slots), index=index, recorder=recorder)
        offline = Offline(path, ctx, store, recorder, created=not exists)
        for record in report.channels:
            channel = Channel.from_record(record)
            index.channels[channel.id] = channel
            offline.channels[channel.id] = channel
        yield offline
    finally:
        await store.close()


# -- a read-only view, beside a running server ---------------------------------------------------


@dataclass
class View:
    """Projects and checks as of the store's last commit, and how old that commit may be."""

    projects: list[Project]
    checks: list[Check]
    # Seconds since the file (or its write-ahead log) last changed: the view is at least this old.
    age_s: float | None
    skipped: int = 0


def read_view(path: str) -> View:
    """Read projects and checks from the last commit, taking no lock (WAL lets a reader in while
    the server's writer works). Rows that cannot be decoded are counted, not fatal."""
    if not os.path.exists(path):
        raise AdminError(f"{path} does not exist: point --db (HC_DB) at the store file")
    codec = Codec()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)) as conn:
            projects_rows = conn.execute("SELECT data FROM projects").fetchall()
            checks_rows = conn.execute("SELECT data FROM checks").fetchall()
    except sqlite3.Error as exc:
        raise AdminError(f"cannot read {path} ({exc})") from None
    skipped = 0
    projects: list[Project] = []
    checks: list[Check] = []
    for (data,) in projects_rows:
        try:
            projects.append(codec.decode_project(data))
        except DecodeError:
            skipped += 1
    for (data,) in checks_rows:
        try:
            checks.append(codec.decode_check(data))
        except DecodeError:
            skipped += 1
    mtimes = [os.path.getmtime(p) for p in (path, path + "-wal") if os.path.exists(p)]
    age = time.time() - max(mtimes) if mtimes else None
    projects.sort(key=lambda p: p.created)
    return View(projects, checks, age, skipped)

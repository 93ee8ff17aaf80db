"""Write-behind: request handlers hand over what changed and return; one writer task puts it in SQLite.

    recorder = WriteBehind(await Store.open("data.db"), flush_interval_ms=100)
    recorder.start()
    recorder.ping_recorded(check, ping, flip)   # None: answer now (an awaitable: see below)
    await recorder.recent_pings(check, 10)      # visible at once, flushed or not
    await recorder.close()                      # flushes what is left, closes the file

Changes gather in a pending batch. Checks, projects and channels are kept by key and encoded when
the batch is flushed, so a check pinged a thousand times between two flushes is written once;
pings and flips are kept in full. The writer takes the whole batch every `flush_interval_ms`, or
sooner once `flush_batch` changes wait, and writes it in one transaction; meanwhile the next batch
gathers (group commit). A batch that fails to commit stays in memory, joins the next one and is
retried with backoff, so nothing acknowledged is lost while the disk misbehaves.

The recorder methods return None, or an awaitable the handler must await before answering:
- in durable mode, always: it completes once the transaction holding the change has committed;
- when `max_pending` changes, or `max_pending_bytes` of pings, wait for the disk, or while flushes
  succeed but the oldest change not yet committed is more than `max_pending_age_ms` past the flush
  interval (the writer is slower than the pings): it completes when there is room again. So the
  changes at risk in a crash stay within the interval plus that age, and under more pings than the
  disk takes, answers slow down to the disk's pace instead. (While flushes fail, only the count and
  the bytes hold answers back.)

A check's pings beyond the ping log limit are dropped from memory before they are written (they
would only overwrite each other in the check's ring), so a backlog never writes more than the limit
per check.
A retry after a failed flush writes the batch in pieces of a transaction each, oldest first, a check
whole in one piece: on a disk with little room the pieces that fit land, and one that cannot fit
does not hold back the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar

from persistence.codec import Check, Codec, DecodeError, Flip, Ping, Project
from persistence.pacing import Pacer
from persistence.protocol import PingRows, WriteSet
from persistence.stats import FlushStats
from persistence.store import Store

if TYPE_CHECKING:
    # The Recorder port's key of a notification, for annotations only: importing hcserver.ports at
    # run time would load the domain modules that only persistence.codec imports.
    from hcserver.ports import NotificationKey

log = logging.getLogger(__name__)
T = TypeVar("T")

# A retry writes pieces of about this many bytes of pings, or this many checks, a transaction each:
# small enough to fit where the disk has a little room, large enough to keep up.
_PIECE_BYTES = 1 << 20
_PIECE_CHECKS = 1000


class NotPersisted(RuntimeError):
    """Given to durable waiters when the server shut down before their change could be written."""


class _Batch:
    """Changes accepted since the last flush was taken. Deletes apply before upserts when written."""

    __slots__ = (
        "accepted", "channel_deletes", "channels", "check_deletes", "checks", "flips", "future",
        "nbytes", "notifications", "ping_logs", "project_deletes", "projects", "waiters",
    )  # fmt: skip

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.project_deletes: set[str] = set()
        self.checks: dict[str, Check] = {}
        self.check_deletes: set[str] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.channel_deletes: set[str] = set()
        self.notifications: dict[NotificationKey, dict[str, Any]] = {}
        # Pings as packed rows, in order of n (see PingRows: no Ping objects are kept).
        self.ping_logs: dict[str, PingRows] = {}
        # Bytes of those rows: with the count of changes, what bounds the memory a backlog takes.
        self.nbytes = 0
        self.flips: dict[str, list[Flip]] = {}
        # Clock reading of every change accepted: their count is the batch's size, their ages the lags.
        self.accepted: list[float] = []
        # Completed when this batch commits (durable mode); futures of batches merged into this one.
        self.future: asyncio.Future[None] | None = None
        self.waiters: list[asyncio.Future[None]] = []

    def waiter(self) -> asyncio.Future[None]:
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
        return self.future

    def add_flip(self, uuid: str, flip: Flip) -> None:
        flips = self.flips.get(uuid)
        if flips is None:
            self.flips[uuid] = [flip]
        else:
            flips.append(flip)

    def delete_check(self, uuid: str) -> None:
        self.checks.pop(uuid, None)
        log = self.ping_logs.pop(uuid, None)
        if log is not None:
            self.nbytes -= len(log.data)
        self.flips.pop(uuid, None)
        self.check_deletes.add(uuid)
        for key in [k for k in self.notifications if k[0] == uuid]:
            del self.notifications[key]

    def absorb(self, later: _Batch, ping_log_limit: int) -> None:
        """Fold a later batch into this one (a retry after a failed flush), keeping its meaning."""
        for pid in later.project_deletes:
            self.projects.pop(pid, None)
            self.project_deletes.add(pid)
        for uuid in later.check_deletes:
            self.delete_check(uuid)
        for cid in later.channel_deletes:
            self.channels.pop(cid, None)
            self.channel_deletes.add(cid)
        self.projects.update(later.projects)
        self.checks.update(later.checks)
        self.channels.update(later.channels)
        self.notifications.update(later.notifications)
        self.nbytes += later.nbytes
        for uuid, log in later.ping_logs.items():
            mine = self.ping_logs.get(uuid)
            if mine is None:
                self.ping_logs[uuid] = log
            else:
                mine.extend(log)
                self.nbytes -= mine.trim(ping_log_limit)
        for uuid, flips in later.flips.items():
            self.flips.setdefault(uuid, []).extend(flips)
        self.accepted.extend(later.accepted)
        self.waiters.extend(later.detach_waiters())

    def detach_bulk(self) -> list[Any]:
        """Take away what holds most of this batch's objects once it has committed (snapshots, ping
        rows, flips, clock readings), for the caller to free in slices; what is left is small."""
        bulk: list[Any] = [self.checks, self.ping_logs, self.flips, self.accepted]
        self.checks, self.ping_logs, self.flips, self.accepted = {}, {}, {}, []
        return bulk

    def detach_waiters(self) -> list[asyncio.Future[None]]:
        """Take this batch's durable waiters away from it (to settle them when something else commits)."""
        futures = self.waiters if self.future is None else [self.future, *self.waiters]
        self.future, self.waiters = None, []
        return futures

    def split(self, piece_bytes: int, piece_checks: int) -> list[_Batch]:
        """This batch's changes as smaller batches, to write one transaction each, in order: first
        the deletes, projects and channels, then the checks, oldest change first, with all of one
        check's changes (snapshot, pings, flips, notifications) in one piece, so each commit leaves
        every check whole. A piece holds about `piece_bytes` of pings or `piece_checks` checks.
        The accepted changes are shared out in proportion to the rows; waiters stay here."""
        head = _Batch()
        head.project_deletes, head.check_deletes, head.channel_deletes = (
            self.project_deletes, self.check_deletes, self.channel_deletes,
        )  # fmt: skip
        head.projects, head.channels = self.projects, self.channels
        pieces = [head]
        notifications: dict[str, list[NotificationKey]] = {}
        for key in self.notifications:
            notifications.setdefault(key[0], []).append(key)
        piece = _Batch()
        for uuid in dict.fromkeys(chain(self.checks, self.ping_logs, self.flips, notifications)):
            if uuid in self.checks:
                piece.checks[uuid] = self.checks[uuid]
            log = self.ping_logs.get(uuid)
            if log is not None:
                piece.ping_logs[uuid] = log
                piece.nbytes += len(log.data)
            if uuid in self.flips:
                piece.flips[uuid] = self.flips[uuid]
            for key in notifications.get(uuid, ()):
                piece.notifications[key] = self.notifications[key]
            if piece.nbytes >= piece_bytes or len(piece.checks) >= piece_checks:
                pieces.append(piece)
                piece = _Batch()
        pieces.append(piece)
        weighed = [(p, rows) for p in pieces if (rows := p.rows())] or [(piece, 0)]
        accepted, total = self.accepted, sum(rows for _, rows in weighed)
        taken = 0
        for i, (p, rows) in enumerate(weighed, 1):
            share = len(accepted) - taken if i == len(weighed) else round(len(accepted) * rows / total)
            p.accepted = accepted[taken : taken + share]
            taken += share
        return [p for p, _ in weighed]

    def is_depended_on(self) -> bool:
        """Holds what later pieces may need in the store first: deletes, projects, channels."""
        return bool(
            self.project_deletes or self.check_deletes or self.channel_deletes or self.projects or self.channels
        )

    def rows(self) -> int:
        """Rows this batch writes, or about as many (a check's snapshot, pings, flips and the rest)."""
        return (
            len(self.project_deletes) + len(self.check_deletes) + len(self.channel_deletes) + len(self.projects)
            + len(self.channels) + len(self.checks) + len(self.notifications)
            + sum(log.count for log in self.ping_logs.values()) + sum(map(len, self.flips.values()))
        )  # fmt: skip

    def settle(self, error: BaseException | None = None) -> None:
        _settle([self.future, *self.waiters], error)


def _settle(futures: Iterable[asyncio.Future[None] | None], error: BaseException | None = None) -> None:
    for fut in futures:
        if fut is None or fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
            fut.exception()  # nobody may be waiting any more: do not log it as unretrieved


class WriteBehind:
    """The `hcserver.ports.Recorder` that keeps history in SQLite (see the module docstring).

    Also records the alerts code's channels (`channel_changed(record)` with `id` and `project_id`
    keys) and notifications (`notification_changed((check, flip created, channel id), record)`).
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval_ms: int = 100,
        flush_batch: int = 5000,
        max_pending: int = 200_000,
        max_pending_bytes: int = 256 << 20,
        max_pending_age_ms: float = 200.0,
        ping_log_limit: int | None = None,
        flip_limit: int = 1000,
        durable: bool = False,
        retry_cap_s: float = 2.0,
        drain_timeout_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        stats: FlushStats | None = None,
    ) -> None:
        self._store = store
        self._codec = Codec()
        self._interval = flush_interval_ms / 1000
        self._flush_batch = max(1, flush_batch)
        self._max_pending = max(1, max_pending)
        self._max_pending_bytes = max(1, max_pending_bytes)
        # How old the oldest unwritten change may grow: its flush is due one interval after it came,
        # and the writer may be late with it by `max_pending_age_ms`.
        self._max_age = self._interval + max_pending_age_ms / 1000
        if ping_log_limit is None:
            ping_log_limit = store.ping_log_limit
        elif ping_log_limit != store.ping_log_limit:
            raise ValueError(
                f"the store keeps {store.ping_log_limit} pings per check: open it with ping_log_limit={ping_log_limit}"
            )
        self.ping_log_limit = ping_log_limit
        # A check's pending pings are trimmed to the limit once twice as many wait: a trim then
        # costs an unpack of `limit` rows every `limit` pings.
        self._trim_at = 2 * ping_log_limit
        self.flip_limit = flip_limit
        self.durable = durable
        self._retry_cap = retry_cap_s
        self._drain_timeout = drain_timeout_s
        self._clock = clock

        self._pending = _Batch()
        # The batch being written, or what failed and waits for its retry: one batch, or the pieces
        # of a retry that are not committed yet (see `_retry`).
        self._inflight: list[_Batch] = []
        # Durable waiters of a batch written in pieces: settled once every piece has committed.
        self._held: list[asyncio.Future[None]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._room_for_age = False  # the room was closed by max_pending_age_ms (not logged as a warning)
        # The task awaiting a store.write, and once stopping, the loop time by which the drain ends
        # (see `stop`); a write still unanswered then is cancelled by `_expiry` (`_expired` says so).
        self._writing: asyncio.Task[Any] | None = None
        self._deadline: float | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._expired = False
        # The loop time the next regular flush is due (see `run`), or None outside `run`.
        self._next_due: float | None = None
        # Flip numbers: assigned when a batch is encoded, in order; reads take the stored ones up to
        # the last committed number and the rest from memory, so a flip is never seen twice.
        self._next_flip_seq = store.flip_seq
        self._committed_flip_seq = store.flip_seq

        self._error: str | None = None
        self._failures_in_row = 0
        self._backoff = 0.0
        self.stats = stats if stats is not None else FlushStats()

    # -- Recorder: changes (the hot path; no I/O, no awaiting) ------------------------------------

    def ping_recorded(self, check: Check, ping: Ping, flip: Flip | None) -> Awaitable[None] | None:
        batch = self._pending
        uuid = check.uuid
        batch.checks[uuid] = check
        data = self._safely(self._codec.encode_ping, ping)
        if data is not None:
            log = batch.ping_logs.get(uuid)
            if log is None:
                log = batch.ping_logs[uuid] = PingRows()
            batch.nbytes += log.add(uuid, ping.n, data)
            if log.count >= self._trim_at:
                batch.nbytes -= log.trim(self.ping_log_limit)
        if flip is not None:
            batch.add_flip(uuid, flip)
        return self._accepted(batch)

    def check_changed(self, check: Check) -> Awaitable[None] | None:
        batch = self._pending
        batch.checks[check.uuid] = check
        return self._accepted(batch)

    def check_deleted(self, check: Check) -> Awaitable[None] | None:
        batch = self._pending
        batch.delete_check(check.uuid)
        return self._accepted(batch)

    def flip_made(self, check: Check, flip: Flip) -> Awaitable[None] | None:
        batch = self._pending
        batch.checks[check.uuid] = check
        batch.add_flip(check.uuid, flip)
        return self._accepted(batch)

    def project_changed(self, project: Project) -> Awaitable[None] | None:
        batch = self._pending
        batch.projects[project.id] = project
        return self._accepted(batch)

    def project_deleted(self, project: Project) -> Awaitable[None] | None:
        """Forgets the project row only: call `check_deleted` for each of its checks too."""
        batch = self._pending
        batch.projects.pop(project.id, None)
        batch.project_deletes.add(project.id)
        return self._accepted(batch)

    def channel_changed(self, record: dict[str, Any]) -> Awaitable[None] | None:
        """Store the alerts code's channel record (a plain dict with at least `id` and `project_id`)."""
        if not isinstance(record.get("id"), str) or not isinstance(record.get("project_id"), str):
            raise ValueError("a channel record needs string 'id' and 'project_id'")
        batch = self._pending
        batch.channels[record["id"]] = record
        return self._accepted(batch)

    def channel_deleted(self, channel_id: str) -> Awaitable[None] | None:
        batch = self._pending
        batch.channels.pop(channel_id, None)
        batch.channel_deletes.add(channel_id)
        return self._accepted(batch)

    def notification_changed(self, key: NotificationKey, record: dict[str, Any]) -> Awaitable[None] | None:
        """Store a notification record, keyed by (check uuid, flip created, channel id); its
        `status` item (if any) is also kept in a column so unfinished ones can be loaded alone."""
        batch = self._pending
        batch.notifications[key] = record
        return self._accepted(batch)

    def _accepted(self, batch: _Batch) -> Awaitable[None] | None:
        now = self._clock()
        batch.accepted.append(now)
        if (self.durable or len(batch.accepted) >= self._flush_batch) and not self._wake.is_set():
            self._wake.set()
        # Every caller gets its own shield: one cancelled request must not cancel the shared future
        # that all the others wait on.
        done = asyncio.shield(batch.waiter()) if self.durable else None
        if self._has_room(now):  # `batch` is the pending one, counted there
            return done
        room = self._room
        if room is None:
            room = self._room = asyncio.get_running_loop().create_future()
            self._room_for_age = self._too_old(now)
            if self._room_for_age:
                self.stats.slowed += 1
                log.debug("the writer is over max_pending_age_ms late: answers wait for it")
            else:
                size, nbytes = self._backlog()
                log.warning(
                    "%d changes, %d bytes of pings, wait for the disk (max_pending or max_pending_bytes); "
                    "answers are delayed until they are written",
                    size,
                    nbytes,
                )
        return asyncio.shield(room) if done is None else _both(done, asyncio.shield(room))

    # -- Recorder: history reads (pending records merged with stored rows) ------------------------

    async def recent_pings(self, check: Check, limit: int) -> list[Ping]:
        """Newest first, at most `limit`, never older than the ping log limit allows."""
        floor = check.n_pings - self.ping_log_limit
        newest = self._memory_pings(check.uuid, floor)
        newest.reverse()
        if len(newest) >= limit:
            return newest[: max(limit, 0)]
        # Rows committed after this point are all in `newest`: asking below its oldest avoids twins.
        below = newest[-1].n if newest else None
        rows = await self._store.recent_pings(check.uuid, floor, below, limit - len(newest))
        return newest + self._decode_all(rows, self._codec.decode_ping)

    async def get_ping(self, check: Check, n: int) -> Ping | None:
        if n <= check.n_pings - self.ping_log_limit or n < 1:
            return None
        for ping in self._memory_pings(check.uuid, n - 1):
            if ping.n == n:
                return ping
        data = await self._store.get_ping(check.uuid, n)
        if data is None:
            return None
        found = self._decode_all([data], self._codec.decode_ping)
        return found[0] if found else None

    async def flips(self, check: Check) -> list[Flip]:
        """Oldest first, at most `flip_limit`."""
        recent = self._memory_flips(check.uuid)
        upto = self._committed_flip_seq
        rows = await self._store.flips(check.uuid, upto, self.flip_limit)
        result = self._decode_all(rows, self._codec.decode_flip) + recent
        return result[-self.flip_limit :] if self.flip_limit > 0 else []

    def _memory_pings(self, uuid: str, above: int) -> list[Ping]:
        """Pings of a check numbered above `above` not yet committed, oldest first."""
        rows: list[bytes] = []
        for batch in (*self._inflight, self._pending):
            log = batch.ping_logs.get(uuid)
            if log is not None:
                rows.extend(data for _, n, data in log if n > above)
        return self._decode_all(rows, self._codec.decode_ping)

    def _memory_flips(self, uuid: str) -> list[Flip]:
        out: list[Flip] = []
        for batch in (*self._inflight, self._pending):
            out.extend(batch.flips.get(uuid, ()))
        return out

    def _decode_all(self, rows: Iterable[bytes], decode: Callable[[bytes], T]) -> list[T]:
        out: list[T] = []
        for data in rows:
            try:
                out.append(decode(data))
            except DecodeError as exc:
                self.stats.skipped += 1
                log.warning("skipped a stored record that cannot be decoded: %s", exc)
        return out

    # -- the writer -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the writer as a task of the running loop; `close()` stops and drains it."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="hcserver-writer")
        return self._task

    def stop(self) -> None:
        """Ask `run()` to finish: it drains what is pending, then returns. From now on the writing
        has `drain_timeout_s`, whether the disk fails or hangs: a write still unanswered then is
        cancelled (which ends the writer process) and what is left is given up."""
        self._stop.set()
        self._wake.set()
        self._arm_deadline()

    def _arm_deadline(self) -> float:
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.time() + self._drain_timeout
            self._expiry = loop.call_at(self._deadline, self._expire)
        return self._deadline

    def _expire(self) -> None:
        if self._writing is not None:
            self._expired = True
            self._writing.cancel()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and asyncio.get_running_loop().time() >= self._deadline

    async def run(self) -> None:
        """Flush every interval (sooner when a batch is full or durable changes wait) until stopped.

        Flushes start at a fixed rate, one interval after the previous one started (not after it
        finished): a change waits at most one interval before its flush takes it, so a crash loses
        at most the last interval of changes (plus the few milliseconds a flush needs to hand its
        batch to the writer process, which finishes the write even if this process is killed).
        """
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if self._error is not None:
                    # Failing: wait out the backoff whatever arrives; only a stop cuts it short.
                    await _wait(self._stop, self._backoff)
                elif not self._due():
                    await _wait(self._wake, next_tick - loop.time())
                if self._stop.is_set():
                    break
                next_tick = self._next_due = loop.time() + self._interval
                await self.flush_once()
        finally:
            self._next_due = None
            await self._drain()

    def _due(self) -> bool:
        size = len(self._pending.accepted)
        return size >= self._flush_batch or (self.durable and size > 0)

    async def flush_once(self) -> bool:
        """Write everything pending. True when all of it committed; False when there was nothing to
        do or a write failed (what did not commit is kept for the next try).

        A batch is first written in one transaction; a retry writes it in pieces (see `_retry`)."""
        async with self._lock:
            if self._inflight:
                return await self._retry()
            if not self._pending.accepted:
                return False
            batch = self._pending
            self._pending = _Batch()
            self._inflight = [batch]
            # A regular flush (smaller than a full batch, and not the drain at shutdown) may wait for
            # a free core until the next one is due (see Store.write): it then finishes at normal
            # priority, so the next flush starts late by no more than its remaining work. A flush
            # that must catch up, or that answers wait for (see `_too_old`), runs at normal
            # priority from the start.
            light = len(batch.accepted) < self._flush_batch and not self._stop.is_set() and self._room is None
            error = await self._write(batch, idle_until=self._next_due if light else None)
            if error is not None:
                self._failed(error, len(batch.accepted))
            return error is None

    async def _retry(self) -> bool:
        """Merge what failed with what came since, and write it in pieces of a transaction each,
        oldest first (see `_Batch.split`). On a full disk the pieces that fit land and the others
        wait; on any other error the rest waits for the next try."""
        merged = self._inflight[0]
        for later in (*self._inflight[1:], self._pending):
            merged.absorb(later, self.ping_log_limit)
        self._pending = _Batch()
        self._held.extend(merged.detach_waiters())
        self._inflight = pieces = merged.split(_PIECE_BYTES, _PIECE_CHECKS)
        first_error: Exception | None = None
        progress = False
        for piece in list(pieces):
            error = await self._write(piece)
            if error is None:
                progress = True
                continue
            first_error = first_error or error
            if not _is_disk_full(error) or piece.is_depended_on():
                break
        if first_error is None:
            return True
        if progress:
            self._backoff = 0.0
        self._failed(first_error, sum(len(b.accepted) for b in self._inflight))
        return False

    async def _write(self, batch: _Batch, *, idle_until: float | None = None) -> Exception | None:
        """Write `batch` (one of `_inflight`) in one transaction, at idle CPU priority until the loop
        time `idle_until` (if any). Once it has committed it leaves `_inflight`; when nothing is left
        there, durable waiters are told and errors forgotten."""
        ws = await self._encode(batch)
        if self._past_deadline():
            return self._timed_out()
        idle_s = idle_until - asyncio.get_running_loop().time() if idle_until is not None else 0.0
        started = self._clock()
        # Awaited in this task rather than in a task of its own, so the writer's answer resumes the
        # flush without another turn of the loop: `_expire` cancels this task, and that is undone here.
        self._writing = task = asyncio.current_task()
        try:
            await self._store.write(ws, idle_s=idle_s)
        except asyncio.CancelledError:
            if not self._expired or task is None or task.uncancel() > 0:
                raise
            return self._timed_out()
        except Exception as exc:
            return exc
        finally:
            self._writing = None
            self._expired = False
        committed = self._clock()
        self._inflight.remove(batch)
        self._committed_flip_seq = self._store.flip_seq
        self.stats.committed(ws.rows(), batch.accepted, started, committed)
        batch.settle()
        if not self._inflight:
            if self._error is not None:
                log.warning("the database accepts writes again after %d failed flushes", self._failures_in_row)
            self._error = None
            self._failures_in_row = 0
            self._backoff = 0.0
            _settle(self._held)
            self._held = []
        self._release_room()
        await _free_in_slices(batch.detach_bulk() + ws.detach_bulk())
        return None

    def _timed_out(self) -> TimeoutError:
        return TimeoutError(f"the SQLite writer did not answer within the drain timeout ({self._drain_timeout:g} s)")

    def _failed(self, exc: Exception, size: int) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.stats.flush_errors += 1
        self._failures_in_row += 1
        self._backoff = min(self._retry_cap, max(0.05, self._backoff * 2))
        if self._error != reason:
            log.error("flush of %d changes failed (%s); keeping them and retrying", size, reason)
        self._error = reason

    def _backlog(self) -> tuple[int, int]:
        """Changes, and bytes of pings, waiting for the disk."""
        size, nbytes = len(self._pending.accepted), self._pending.nbytes
        for batch in self._inflight:
            size += len(batch.accepted)
            nbytes += batch.nbytes
        return size, nbytes

    def _has_room(self, now: float) -> bool:
        """Whether a new change may be answered at once: the backlog is within `max_pending` and
        `max_pending_bytes`, and its oldest change not too old (see `_too_old`)."""
        size, nbytes = self._backlog()
        return size < self._max_pending and nbytes < self._max_pending_bytes and not self._too_old(now)

    def _too_old(self, now: float) -> bool:
        """Whether the oldest change not yet committed is more than `max_pending_age_ms` past its
        flush interval, with flushes succeeding (a failing disk is bounded by count and bytes alone)."""
        if self._error is not None:
            return False
        batch = self._inflight[0] if self._inflight else self._pending
        return bool(batch.accepted) and now - batch.accepted[0] > self._max_age

    def _release_room(self) -> None:
        if self._room is None or not self._has_room(self._clock()):
            return
        self._room.set_result(None)
        self._room = None
        if not self._room_for_age:
            size, nbytes = self._backlog()
            log.warning(
                "pending changes back under max_pending and max_pending_bytes (%d, %d bytes): "
                "answers are no longer delayed",
                size,
                nbytes,
            )

    async def _encode(self, batch: _Batch) -> WriteSet:
        # In slices (see persistence.pacing): the batch is already detached, and each snapshot is
        # whole (a check changed meanwhile is dirty in the next batch and written again).
        codec = self._codec
        pacer = Pacer()
        ws = WriteSet(
            project_deletes=[(pid,) for pid in batch.project_deletes],
            check_deletes=[(uuid,) for uuid in batch.check_deletes],
            channel_deletes=[(cid,) for cid in batch.channel_deletes],
        )
        for project in batch.projects.values():
            data = self._safely(codec.encode_project, project)
            if data is not None:
                ws.projects.append((project.id, data))
        for check in batch.checks.values():
            data = self._safely(codec.encode_check, check)
            if data is not None:
                ws.checks.append((check.uuid, check.project_id, data))
            if pacer.due():
                await pacer.rest()
        for cid, record in batch.channels.items():
            data = self._safely(codec.encode_record, record)
            if data is not None:
                ws.channels.append((cid, str(record.get("project_id", "")), data))
        for key, record in batch.notifications.items():
            data = self._safely(codec.encode_record, record)
            if data is not None:
                ws.notifications.append((*key, str(record.get("status", "")), data))
        limit = self.ping_log_limit
        for log in batch.ping_logs.values():
            # A check's pings are in order of n, one apart: the newest is the last. Rows beyond the
            # log limit are dropped here; stored ones are overwritten in the check's ring (each
            # ping goes to slot n % limit, so the newest `limit` never share a slot).
            batch.nbytes -= log.trim(limit)
            ws.ping_logs.append(log)
            if pacer.due():
                await pacer.rest()
        for uuid, flips in batch.flips.items():
            for flip in flips:
                data = self._safely(codec.encode_flip, flip)
                if data is not None:
                    self._next_flip_seq += 1
                    ws.flips.append((self._next_flip_seq, uuid, flip.created, data))
            ws.flip_prunes.append((uuid, self.flip_limit))
            if pacer.due():
                await pacer.rest()
        return ws

    def _safely(self, encode: Callable[[Any], bytes], obj: Any) -> bytes | None:
        # One record that cannot be encoded must not stop every other change from being written.
        try:
            return encode(obj)
        except Exception:
            self.stats.skipped += 1
            log.exception("cannot encode %r; it is not written", obj)
            return None

    # -- shutdown ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the writer, write everything pending (giving up after `drain_timeout_s` if the disk
        keeps failing or stops answering), then close the store."""
        self.stop()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
        await self._store.close()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._arm_deadline()
        try:
            while self._inflight or self._pending.accepted:
                if await self.flush_once():
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    self._give_up()
                    return
                await asyncio.sleep(min(self._backoff or 0.05, left))
        finally:
            if self._expiry is not None:
                self._expiry.cancel()

    def _give_up(self) -> None:
        lost, _ = self._backlog()
        log.error("shutting down with %d changes not written: %s", lost, self._error)
        error = NotPersisted(f"not written before shutdown: {self._error}")
        for batch in (*self._inflight, self._pending):
            batch.settle(error)
        _settle(self._held, error)
        self._held = []
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
            self._room = None

    # -- health -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Health of the writer, for `/api/v3/status/`: `ok` is False while flushes fail."""
        now = self._clock()
        pending, pending_bytes = self._backlog()
        oldest = min((b.accepted[0] for b in (*self._inflight, self._pending) if b.accepted), default=None)
        return {
            "ok": self._error is None,
            "error": self._error,
            "pending": pending,
            "pending_bytes": pending_bytes,
            "max_pending": self._max_pending,
            "max_pending_bytes": self._max_pending_bytes,
            "max_pending_age_ms": round((self._max_age - self._interval) * 1000, 3),
            "oldest_pending_age_ms": round((now - oldest) * 1000, 3) if oldest is not None else 0.0,
            **self.stats.status(),
            "durable": self.durable,
        }


def _is_disk_full(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


async def _free_in_slices(garbage: list[Any]) -> None:
    """Drop a flushed batch a piece at a time (see persistence.pacing).

    Letting go of a flush of 50,000 pings at once frees every object in one cascade (~15 ms).
    Handing it to another thread instead still stalled the loop for the 5 ms GIL switch interval.
    """
    pacer = Pacer()
    while garbage:
        item = garbage.pop()
        while item:
            if isinstance(item, dict):
                item.popitem()
            else:
                del item[-256:]
            if pacer.due():
                await pacer.rest()
        del item


async def _wait(event: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)  # due already: a turn of the loop, then on
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _both(first: Awaitable[None], second: Awaitable[None]) -> None:
    await first
    await second

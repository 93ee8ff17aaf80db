"""Write-behind: request handlers hand over what changed and return; one writer task puts it in SQLite.

    >>> recorder = WriteBehind(await Store.open("data.db"), flush_interval_ms=100)
    >>> recorder.start()
    >>> recorder.ping_recorded(check, ping, flip)   # None: answer now (an awaitable: see below)
    >>> await recorder.recent_pings(check, 10)      # visible at once, flushed or not
    >>> await recorder.close()                      # flushes what is left, closes the file

Changes gather in a pending batch. Checks, projects and channels are kept by key and encoded when
the batch is flushed, so a check pinged a thousand times between two flushes is written once;
pings and flips are kept in full. The writer takes the whole batch every `flush_interval_ms`, or
sooner once `flush_batch` changes wait, and writes it in one transaction; meanwhile the next batch
gathers (group commit). A batch that fails to commit stays in memory, joins the next one and is
retried with backoff, so nothing acknowledged is lost while the disk misbehaves.

The recorder methods return None, or an awaitable the handler must await before answering:
- in durable mode, always: it completes once the transaction holding the change has committed;
- when `max_pending` changes wait for the disk: it completes when there is room again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped]  # no stubs or py.typed upstream

from hcserver.domain.checks import Check
from hcserver.domain.pings import Flip, Ping
from hcserver.domain.projects import Project
from persistence.codec import Codec, DecodeError
from persistence.pacing import Pacer
from persistence.store import NotificationKey, Store, WriteSet

log = logging.getLogger(__name__)
T = TypeVar("T")

# Commit lags kept for the percentiles in status(): the most recent changes, sampled per flush
# (at most ~1000 from one flush: taking 8192 from a big one cost ~1 ms of the event loop).
_LAG_SAMPLES = 8192
_LAG_SAMPLES_PER_FLUSH = 1000


class NotPersisted(RuntimeError):
    """Given to durable waiters when the server shut down before their change could be written."""


class _PingLog:
    """The pending pings of one check, as rows (check uuid, n, data) packed back to back.

    Packed when recorded, not kept as objects: a flush then hands the writer these bytes as they
    are, and letting go of them afterwards frees one buffer per check. Packing, then freeing, tens
    of thousands of Python rows at flush time held the event loop for ~20 ms (in slices, but ping
    answers waited behind them). Reads of unflushed pings unpack the rows.
    """

    __slots__ = ("count", "data", "last_n")

    def __init__(self) -> None:
        self.data = bytearray()
        self.count = 0
        self.last_n = 0

    def add(self, row: bytes, n: int) -> None:
        self.data += row
        self.count += 1
        self.last_n = n

    def extend(self, later: _PingLog) -> None:
        self.data += later.data
        self.count += later.count
        self.last_n = later.last_n

    def rows(self) -> Iterator[tuple[str, int, bytes]]:
        unpacker = msgpack.Unpacker(use_list=False)
        unpacker.feed(self.data)
        return iter(unpacker)


class _Batch:
    """Changes accepted since the last flush was taken. Deletes apply before upserts when written."""

    __slots__ = (
        "accepted", "channel_deletes", "channels", "check_deletes", "checks", "flips", "future",
        "notifications", "ping_logs", "project_deletes", "projects", "waiters",
    )  # fmt: skip

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.project_deletes: set[str] = set()
        self.checks: dict[str, Check] = {}
        self.check_deletes: set[str] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.channel_deletes: set[str] = set()
        self.notifications: dict[NotificationKey, dict[str, Any]] = {}
        # Pings as packed rows (see _PingLog), in order of n. No Ping objects are kept: 50,000
        # pending ones made the garbage collector's passes take up to 8 ms.
        self.ping_logs: dict[str, _PingLog] = {}
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
        self.ping_logs.pop(uuid, None)
        self.flips.pop(uuid, None)
        self.check_deletes.add(uuid)
        for key in [k for k in self.notifications if k[0] == uuid]:
            del self.notifications[key]

    def absorb(self, later: _Batch) -> None:
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
        for uuid, log in later.ping_logs.items():
            mine = self.ping_logs.get(uuid)
            if mine is None:
                self.ping_logs[uuid] = log
            else:
                mine.extend(log)
        for uuid, flips in later.flips.items():
            self.flips.setdefault(uuid, []).extend(flips)
        self.accepted.extend(later.accepted)
        if later.future is not None:
            self.waiters.append(later.future)
        self.waiters.extend(later.waiters)

    def settle(self, error: BaseException | None = None) -> None:
        for fut in [self.future, *self.waiters]:
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
        ping_log_limit: int = 100,
        flip_limit: int = 1000,
        durable: bool = False,
        retry_cap_s: float = 2.0,
        drain_timeout_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._codec = Codec()
        self._row_packer = msgpack.Packer()
        self._interval = flush_interval_ms / 1000
        self._flush_batch = max(1, flush_batch)
        self._max_pending = max(1, max_pending)
        self.ping_log_limit = ping_log_limit
        self.flip_limit = flip_limit
        self.durable = durable
        self._retry_cap = retry_cap_s
        self._drain_timeout = drain_timeout_s
        self._clock = clock

        self._pending = _Batch()
        # The batch being written, or the one that failed and waits for its retry.
        self._inflight: _Batch | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None
        # Flip numbers: assigned when a batch is encoded, in order; reads take the stored ones up to
        # the last committed number and the rest from memory, so a flip is never seen twice.
        self._next_flip_seq = store.flip_seq
        self._committed_flip_seq = store.flip_seq

        self._error: str | None = None
        self._failures_in_row = 0
        self._backoff = 0.0
        self._flushes = 0
        self._flush_errors = 0
        self._skipped = 0
        self._last_flush_size = 0
        self._last_flush_changes = 0
        self._last_flush_ms = 0.0
        self._lags: deque[float] = deque(maxlen=_LAG_SAMPLES)
        # (p50, p99) of the lags, worked out when status() is first asked after a flush: sorting
        # the samples takes ~0.7 ms, and status is polled far more often than flushes happen.
        self._lag_percentiles: tuple[float, float] | None = None

    # -- Recorder: changes (the hot path; no I/O, no awaiting) ------------------------------------

    def ping_recorded(self, check: Check, ping: Ping, flip: Flip | None) -> Awaitable[None] | None:
        batch = self._pending
        uuid = check.uuid
        batch.checks[uuid] = check
        data = self._safely(self._codec.encode_ping, ping)
        if data is not None:
            log = batch.ping_logs.get(uuid)
            if log is None:
                log = batch.ping_logs[uuid] = _PingLog()
            log.add(self._row_packer.pack((uuid, ping.n, data)), ping.n)
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
        batch.accepted.append(self._clock())
        size = len(batch.accepted)
        if (self.durable or size >= self._flush_batch) and not self._wake.is_set():
            self._wake.set()
        if self._inflight is not None:
            size += len(self._inflight.accepted)
        # Every caller gets its own shield: one cancelled request must not cancel the shared future
        # that all the others wait on.
        done = asyncio.shield(batch.waiter()) if self.durable else None
        if size < self._max_pending:
            return done
        room = self._room
        if room is None:
            room = self._room = asyncio.get_running_loop().create_future()
            log.warning("%d changes wait for the disk (max_pending); answers are delayed until they are written", size)
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
        for batch in (self._inflight, self._pending):
            log = batch.ping_logs.get(uuid) if batch is not None else None
            if log is not None:
                rows.extend(data for _, n, data in log.rows() if n > above)
        return self._decode_all(rows, self._codec.decode_ping)

    def _memory_flips(self, uuid: str) -> list[Flip]:
        out: list[Flip] = []
        for batch in (self._inflight, self._pending):
            if batch is not None:
                out.extend(batch.flips.get(uuid, ()))
        return out

    def _decode_all(self, rows: Iterable[bytes], decode: Callable[[bytes], T]) -> list[T]:
        out: list[T] = []
        for data in rows:
            try:
                out.append(decode(data))
            except DecodeError as exc:
                self._skipped += 1
                log.warning("skipped a stored record that cannot be decoded: %s", exc)
        return out

    # -- the writer -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the writer as a task of the running loop; `close()` stops and drains it."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="hcserver-writer")
        return self._task

    def stop(self) -> None:
        """Ask `run()` to finish: it drains what is pending, then returns."""
        self._stop.set()
        self._wake.set()

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
                next_tick = loop.time() + self._interval
                await self.flush_once()
        finally:
            await self._drain()

    def _due(self) -> bool:
        size = len(self._pending.accepted)
        return size >= self._flush_batch or (self.durable and size > 0)

    async def flush_once(self) -> bool:
        """Write everything pending in one transaction. True when a batch committed; False when
        there was nothing to do or the write failed (the batch is kept for the next try)."""
        async with self._lock:
            batch = self._inflight
            if batch is None:
                if not self._pending.accepted:
                    return False
                batch = self._inflight = self._pending
                self._pending = _Batch()
            elif self._pending.accepted:
                batch.absorb(self._pending)
                self._pending = _Batch()
            ws = await self._encode(batch)
            started = self._clock()
            try:
                await self._store.write(ws)
            except Exception as exc:
                self._failed(exc, len(batch.accepted))
                return False
            committed = self._clock()
            self._inflight = None
            self._committed_flip_seq = self._store.flip_seq
            self._flushes += 1
            self._last_flush_size = ws.rows()
            self._last_flush_changes = len(batch.accepted)
            self._last_flush_ms = (committed - started) * 1000
            self._sample_lags(batch.accepted, committed)
            if self._error is not None:
                log.warning("the database accepts writes again after %d failed flushes", self._failures_in_row)
            self._error = None
            self._failures_in_row = 0
            self._backoff = 0.0
            batch.settle()
            self._release_room()
            garbage: list[Any] = [batch.checks, batch.ping_logs, batch.flips, batch.accepted, ws.checks, ws.ping_logs]
            batch.checks, batch.ping_logs, batch.flips, batch.accepted = {}, {}, {}, []
            ws.checks, ws.ping_logs = [], []
            await _free_in_slices(garbage)
            return True

    def _failed(self, exc: Exception, size: int) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self._flush_errors += 1
        self._failures_in_row += 1
        self._backoff = min(self._retry_cap, max(0.05, self._backoff * 2))
        if self._error != reason:
            log.error("flush of %d changes failed (%s); keeping them and retrying", size, reason)
        self._error = reason

    def _release_room(self) -> None:
        if self._room is None:
            return
        size = len(self._pending.accepted) + (len(self._inflight.accepted) if self._inflight else 0)
        if size < self._max_pending:
            self._room.set_result(None)
            self._room = None
            log.warning("pending changes back under max_pending (%d): answers are no longer delayed", size)

    def _sample_lags(self, accepted: list[float], committed: float) -> None:
        step = max(1, len(accepted) // _LAG_SAMPLES_PER_FLUSH)
        self._lags.extend(committed - t for t in accepted[::step])
        self._lag_percentiles = None

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
        for uuid, log in batch.ping_logs.items():
            # A check's pings are in order of n, one apart: the newest is the last. Rows beyond the
            # log limit are written and pruned in the same transaction (by the writer process).
            floor = log.last_n - limit
            ws.ping_logs.append((log.count, log.data))
            if floor > 0:
                ws.ping_prunes.append((uuid, floor))
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
            self._skipped += 1
            log.exception("cannot encode %r; it is not written", obj)
            return None

    # -- shutdown ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the writer, write everything pending (giving up after `drain_timeout_s` if the disk
        keeps failing), then close the store."""
        self.stop()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
        await self._store.close()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout
        while self._inflight is not None or self._pending.accepted:
            if await self.flush_once():
                continue
            left = deadline - loop.time()
            if left <= 0:
                self._give_up()
                return
            await asyncio.sleep(min(self._backoff or 0.05, left))

    def _give_up(self) -> None:
        lost = len(self._pending.accepted) + (len(self._inflight.accepted) if self._inflight else 0)
        log.error("shutting down with %d changes not written: %s", lost, self._error)
        error = NotPersisted(f"not written before shutdown: {self._error}")
        for batch in (self._inflight, self._pending):
            if batch is not None:
                batch.settle(error)
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
            self._room = None

    # -- health -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Health of the writer, for `/api/v3/status/`: `ok` is False while flushes fail."""
        now = self._clock()
        pending = len(self._pending.accepted)
        oldest: float | None = self._pending.accepted[0] if pending else None
        if self._inflight is not None and self._inflight.accepted:
            pending += len(self._inflight.accepted)
            oldest = self._inflight.accepted[0]
        if self._lag_percentiles is None:
            lags = sorted(self._lags)
            self._lag_percentiles = (_percentile_ms(lags, 0.50), _percentile_ms(lags, 0.99))
        lag_p50, lag_p99 = self._lag_percentiles
        return {
            "ok": self._error is None,
            "error": self._error,
            "pending": pending,
            "oldest_pending_age_ms": round((now - oldest) * 1000, 3) if oldest is not None else 0.0,
            "last_flush_size": self._last_flush_size,
            "last_flush_changes": self._last_flush_changes,
            "last_flush_ms": round(self._last_flush_ms, 3),
            "flush_errors": self._flush_errors,
            "flushes": self._flushes,
            "commit_lag_ms_p50": lag_p50,
            "commit_lag_ms_p99": lag_p99,
            "skipped_records": self._skipped,
            "durable": self.durable,
        }


def _percentile_ms(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


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
